"""Video and multi-frame still images as evidence, frame by frame with provenance.

``core.video.decode`` reads video containers with PyAV (FFmpeg bundled in the wheel):
``probe_video`` describes and checks a file, ``iter_frames`` decodes it in order and
``extract_frame`` seeks to one frame exactly.  ``core.video.stills`` lists the frames
of GIF, TIFF, APNG and WebP files.  Every frame comes with a ``FrameRef``
(``core.video.provenance``) that is enough to re-extract it and check it bit for bit.
"""
