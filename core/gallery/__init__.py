"""Reference galleries outside any case (issue 22): the ``.xfrgallery`` format
(``store``), approximate search with exact re-ranking (``index``), and building
one from images or searching it with a probe (``build``).

The CLI is ``xfr gallery build|search`` (core/cli/gallery.py).  Importing this
package imports numpy; faiss is imported where an index is built or read.
"""
