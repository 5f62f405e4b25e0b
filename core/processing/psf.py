"""Point-spread functions (blur kernels) and FFT helpers for deconvolution.

Shared by the Wiener and Richardson-Lucy operations.  Every kernel is built in
numpy in float64, is square with an odd side (its centre is the middle pixel) and
sums to 1:

- **motion**: a straight segment of ``length`` pixels centred on the kernel's
  centre, at ``angle`` degrees counter-clockwise from the image's x axis (0 =
  horizontal, 90 = vertical).  The segment is sampled at ``MOTION_SAMPLES_PER_PIXEL``
  evenly spaced points per pixel of its length (the points at the centres of equal
  sub-intervals, so a fractional length gives the end pixels a fractional share);
  each point's weight is shared bilinearly among its four nearest pixel centres.
- **gaussian**: ``exp(-(x^2 + y^2) / (2 sigma^2))`` sampled at pixel centres, side
  ``2 * ceil(3 sigma) + 1``.
- **box**: a ``size`` x ``size`` square of equal weights (``size`` odd).

The deconvolutions pad the image with ``reflect_pad`` (mirror without repeating
the edge pixel, numpy ``mode="reflect"``) by ``PAD_FACTOR`` times the kernel's side
on every edge (three sides rather than one cut the error the image's edges spread
by about a fifth in the tests), work
on the padded image with circular FFT convolution (``numpy.fft.rfft2``, float64, per
channel) and crop the padding off again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, float_param, int_param, str_param
from core.processing.base import ProcessingError

MOTION_SAMPLES_PER_PIXEL = 16
KERNELS = ("motion", "gaussian", "box")
PAD_FACTOR = 3  # mirrored padding, in kernel sides, on every edge

# The parameters of the blur both deconvolutions take (same names, same meaning).
PSF_PARAMS: tuple[Param, ...] = (
    Param(
        "kernel",
        str,
        "motion",
        "the blur to undo: motion (straight line), gaussian or box",
        choices=KERNELS,
    ),
    Param("length", float, 5.0, "motion: length of the blur in pixels", 1.0, 201.0),
    Param(
        "angle",
        float,
        0.0,
        "motion: direction in degrees counter-clockwise from horizontal",
        -360.0,
        360.0,
    ),
    Param("sigma", float, 1.5, "gaussian: standard deviation in pixels", 0.1, 33.0),
    Param("size", int, 5, "box: side in pixels (odd)", 1, 201),
)


def motion_psf(length: float, angle_degrees: float) -> np.ndarray:
    """A motion-blur kernel: see the module's docstring."""
    if not length >= 1.0:
        raise ProcessingError(f"motion length {length:g} must be at least 1 pixel")
    half = math.ceil(length / 2.0) + 1
    side = 2 * half + 1
    kernel = np.zeros((side, side), dtype=np.float64)
    count = max(1, math.ceil(length * MOTION_SAMPLES_PER_PIXEL))
    t = (np.arange(count, dtype=np.float64) + 0.5) / count * length - length / 2.0
    theta = math.radians(angle_degrees)
    # counter-clockwise on screen: y grows downwards, so up is -sin
    xs = half + t * math.cos(theta)
    ys = half - t * math.sin(theta)
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    fx = xs - x0
    fy = ys - y0
    weight = 1.0 / count
    for dy, dx, share in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), share * weight)
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


def gaussian_psf(sigma: float) -> np.ndarray:
    half = math.ceil(3.0 * sigma)
    axis = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2.0 * sigma**2))
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


def box_psf(size: int) -> np.ndarray:
    if size < 1 or size % 2 == 0:
        raise ProcessingError(f"box size {size} must be an odd number of pixels")
    return np.full((size, size), 1.0 / (size * size), dtype=np.float64)


def psf_from_params(params: Mapping[str, ParamValue]) -> np.ndarray:
    """The kernel the step's ``kernel`` parameter (and its own parameter) names."""
    kind = str_param(params, "kernel")
    if kind == "motion":
        return motion_psf(float_param(params, "length"), float_param(params, "angle"))
    if kind == "gaussian":
        return gaussian_psf(float_param(params, "sigma"))
    if kind == "box":
        return box_psf(int_param(params, "size"))
    raise ProcessingError(f"unknown kernel {kind!r} (one of {', '.join(KERNELS)})")


def describe_psf(params: Mapping[str, ParamValue]) -> str:
    kind = str_param(params, "kernel")
    if kind == "motion":
        return (
            f"motion {float_param(params, 'length'):g} px at "
            f"{float_param(params, 'angle'):g} degrees"
        )
    if kind == "gaussian":
        return f"gaussian sigma {float_param(params, 'sigma'):g} px"
    return f"box {int_param(params, 'size')} px"


def check_psf(
    op_id: str, params: Mapping[str, ParamValue], height: int, width: int
) -> None:
    """Refuse a kernel that is not odd (box) or is larger than the image."""
    kind = str_param(params, "kernel")
    if kind == "box" and int_param(params, "size") % 2 == 0:
        raise ProcessingError(
            f"parameter size must be odd (it is {int_param(params, 'size')})"
        )
    side = psf_from_params(params).shape[0]
    if side > min(height, width):
        raise ProcessingError(
            f"the {describe_psf(params)} kernel ({side}x{side} pixels) is "
            f"larger than the {width}x{height} image"
        )


def pad_for(kernel: np.ndarray) -> int:
    """The mirrored padding on every edge for this kernel, in pixels."""
    return PAD_FACTOR * int(kernel.shape[0])


def reflect_pad(image: np.ndarray, pad: int) -> np.ndarray:
    """``image`` (HxWxC float64) mirrored by ``pad`` pixels on every edge, without
    repeating the edge pixel (numpy ``mode="reflect"``)."""
    return np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")


def otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's transfer function for circular convolution on ``shape``: the
    kernel zero-padded to ``shape`` with its centre moved to (0, 0), then
    ``numpy.fft.rfft2``."""
    full = np.zeros(shape, dtype=np.float64)
    kh, kw = kernel.shape
    full[:kh, :kw] = kernel
    full = np.roll(full, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(full)


def convolve_circular(image: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    """Circular convolution of every channel of ``image`` (HxWxC float64) with the
    kernel whose ``otf`` is ``transfer``."""
    spectrum = np.fft.rfft2(image, axes=(0, 1))
    return np.fft.irfft2(
        spectrum * transfer[:, :, None], s=image.shape[:2], axes=(0, 1)
    )
