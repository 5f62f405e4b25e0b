"""The one colour mapping: heatmap values -> RGB(A), for the screen and the report.

Every picture of a map goes through here - the GUI viewer and chip view, the PNG
overlays, the report's figures - so a map looks the same on screen and in the signed
report.  numpy only (no Qt, no cv2), so ``core`` and the GUI share it.

The tables are stored, not computed: "jet" is OpenCV's ``COLORMAP_JET`` (the map the
signed reports have always used), "viridis", "inferno" and "magma" are the
matplotlib tables (byte-equal to OpenCV's), "gray" is the identity ramp.  Storing
them pins the colours of a report against library upgrades; ``tests/core/
test_colours.py`` checks them against OpenCV.  Signed maps use a blue-white-red
ramp (``SIGNED_COLOUR_MAP``) whatever map is chosen for unsigned ones.

A value ``v`` on the scale ``low..high`` takes table entry
``floor(clip((v - low) / (high - low), 0, 1) * 255)``; this is the rule reports
were made with, and the GUI follows it so screen and report agree to the byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

COLOUR_MAPS: tuple[str, ...] = ("jet", "viridis", "inferno", "magma", "gray")
DEFAULT_COLOUR_MAP = "jet"
SIGNED_COLOUR_MAP = "blue-white-red"  # blue (negative) - white (0) - red (positive)
# How the GUI names the signed map wherever a colour map is named (issue 18: the
# Colours box must never name a map other than the one drawn).
SIGNED_COLOUR_MAP_LABEL = "blue-white-red (diverging)"

# What the top (warm) and bottom (cold) of the colour bar mean, per map kind, in
# the examiner's words.  Signed ("combined") maps: red raises the model's score,
# blue lowers it, white (0) leaves it as it is.
MAP_LEGENDS: dict[str, tuple[str, str]] = {
    "similarity": ("top: supports 'same person'", "bottom: little or no support"),
    "dissimilarity": (
        "top: supports 'different people'",
        "bottom: little or no support",
    ),
    "combined": (
        "red: raises the score ('same person')",
        "blue: lowers it ('different people'); white: no effect",
    ),
    "uncertainty": ("top: least stable", "bottom: stable"),
}


# A method whose maps are sizes, not for or against (ExplainerInfo.magnitude_only).
MAGNITUDE_LEGEND = (
    "top: where the score reacts most (not for or against 'same person')",
    "bottom: where it reacts least",
)


def map_legend(kind: str) -> tuple[str, str]:
    """(top, bottom) meaning of a map kind's colours; ("", "") for an unknown kind
    rather than a claim that may be false."""
    return MAP_LEGENDS.get(kind, ("", ""))


# 256 RGB entries each, as hex (6 digits per entry), from OpenCV 4 (see module doc).
_STORED_TABLES: dict[str, str] = {
    "jet": (
        "00008000008400008800008c00009000009400009800009c0000a00000a40000a80000ac"
        "0000b00000b40000b80000bc0000c00000c40000c80000cc0000d00000d40000d80000dc"
        "0000e00000e40000e80000ec0000f00000f40000f80000fc0000ff0004ff0008ff000cff"
        "0010ff0014ff0018ff001cff0020ff0024ff0028ff002cff0030ff0034ff0038ff003cff"
        "0040ff0044ff0048ff004cff0050ff0054ff0058ff005cff0060ff0064ff0068ff006cff"
        "0070ff0074ff0078ff007cff0080ff0084ff0088ff008cff0090ff0094ff0098ff009cff"
        "00a0ff00a4ff00a8ff00acff00b0ff00b4ff00b8ff00bcff00c0ff00c4ff00c8ff00ccff"
        "00d0ff00d4ff00d8ff00dcff00e0ff00e4ff00e8ff00ecff00f0ff00f4ff00f8ff00fcff"
        "02fffe06fffa0afff60efff212ffee16ffea1affe61effe222ffde26ffda2affd62effd2"
        "32ffce36ffca3affc63effc242ffbe46ffba4affb64effb252ffae56ffaa5affa65effa2"
        "62ff9e66ff9a6aff966eff9272ff8e76ff8a7aff867eff8282ff7e86ff7a8aff768eff72"
        "92ff6e96ff6a9aff669eff62a2ff5ea6ff5aaaff56aeff52b2ff4eb6ff4abaff46beff42"
        "c2ff3ec6ff3acaff36ceff32d2ff2ed6ff2adaff26deff22e2ff1ee6ff1aeaff16eeff12"
        "f2ff0ef6ff0afaff06feff01fffc00fff800fff400fff000ffec00ffe800ffe400ffe000"
        "ffdc00ffd800ffd400ffd000ffcc00ffc800ffc400ffc000ffbc00ffb800ffb400ffb000"
        "ffac00ffa800ffa400ffa000ff9c00ff9800ff9400ff9000ff8c00ff8800ff8400ff8000"
        "ff7c00ff7800ff7400ff7000ff6c00ff6800ff6400ff6000ff5c00ff5800ff5400ff5000"
        "ff4c00ff4800ff4400ff4000ff3c00ff3800ff3400ff3000ff2c00ff2800ff2400ff2000"
        "ff1c00ff1800ff1400ff1000ff0c00ff0800ff0400ff0000fc0000f80000f40000f00000"
        "ec0000e80000e40000e00000dc0000d80000d40000d00000cc0000c80000c40000c00000"
        "bc0000b80000b40000b00000ac0000a80000a40000a000009c0000980000940000900000"
        "8c0000880000840000800000"
    ),
    "viridis": (
        "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164"
        "47136548146748166848176948186a481a6c481b6d481c6e481d6f481f70482071482173"
        "482374482475482576482677482878482979472a7a472c7a472d7b472e7c472f7d46307e"
        "46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85"
        "4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a"
        "3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c38598c375a8c"
        "375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e"
        "31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e"
        "2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e"
        "277e8e277f8e27808e26818e26828e26828e25838e25848e25858e24868e24878e23888e"
        "23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d21918c20928c20928c20938c"
        "1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88"
        "1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa83"
        "25ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b"
        "32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf70"
        "46c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863"
        "5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d153"
        "7ad1517cd2507fd34e81d34d84d44b86d54989d5488bd6468ed64590d74393d74195d840"
        "98d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32addc30b0dd2fb2dd2db5de2b"
        "b8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a"
        "d8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61e"
        "f6e620f8e621fbe723fde725"
    ),
    "inferno": (
        "00000401000501010601010802010a02020c02020e030210040312040314050417060419"
        "07051b08051d09061f0a07220b07240c08260d08290e092b10092d110a30120a32140b34"
        "150b37160b39180c3c190c3e1b0c411c0c431e0c451f0c48210c4a230c4c240c4f260c51"
        "280b53290b552b0b572d0b592f0a5b310a5c320a5e340a5f3609613809623909633b0964"
        "3d09653e0966400a67420a68440a68450a69470b6a490b6a4a0c6b4c0c6b4d0d6c4f0d6c"
        "510e6c520e6d540f6d550f6d57106e59106e5a116e5c126e5d126e5f136e61136e62146e"
        "64156e65156e67166e69166e6a176e6c186e6d186e6f196e71196e721a6e741a6e751b6e"
        "771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a"
        "8a226a8c23698d23698f24699025689225689326679526679727669827669a28659b2964"
        "9d29649f2a63a02a63a22b62a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305c"
        "b0315bb1325ab3325ab43359b63458b73557b93556ba3655bc3754bd3853bf3952c03a51"
        "c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149cc4248ce4347cf4446d04545"
        "d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513ade5238df5337"
        "e05536e15635e25734e35933e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429"
        "eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711ff1731df2741cf3761bf37819"
        "f47918f57b17f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0a"
        "f98e09fa9008fa9207fa9407fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309"
        "fca50afca60cfca80dfcaa0ffcac11fcae12fcb014fcb216fcb418fbb61afbb81dfbba1f"
        "fbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932f9cb35f8cd37f8cf3af7d13d"
        "f7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55df2e661f2e865"
        "f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96"
        "f8fb9af9fc9dfafda1fcffa4"
    ),
    "magma": (
        "00000401000501010601010802010902020b02020d03030f030312040414050416060518"
        "06051a07061c08071e0907200a08220b09240c09260d0a290e0b2b100b2d110c2f120d31"
        "130d34140e36150e38160f3b180f3d19103f1a10421c10441d11471e114920114b21114e"
        "22115024125325125527125829115a2a115c2c115f2d11612f1163311165331067341069"
        "36106b38106c390f6e3b0f703d0f713f0f72400f74420f75440f76451077471078491078"
        "4a10794c117a4e117b4f127b51127c52137c54137d56147d57157e59157e5a167e5c167f"
        "5d177f5f187f601880621980641a80651a80671b80681c816a1c816b1d816d1d816e1e81"
        "701f81721f817320817521817621817822817922827b23827c23827e2482802582812581"
        "8326818426818627818827818928818b29818c29818e2a81902a81912b81932b80942c80"
        "962c80982d80992d809b2e7f9c2e7f9e2f7fa02f7fa1307ea3307ea5317ea6317da8327d"
        "aa337dab337cad347cae347bb0357bb2357bb3367ab5367ab73779b83779ba3878bc3978"
        "bd3977bf3a77c03a76c23b75c43c75c53c74c73d73c83e73ca3e72cc3f71cd4071cf4070"
        "d0416fd2426fd3436ed5446dd6456cd8456cd9466bdb476adc4869de4968df4a68e04c67"
        "e24d66e34e65e44f64e55064e75263e85362e95462ea5661eb5760ec5860ed5a5fee5b5e"
        "ef5d5ef05f5ef1605df2625df2645cf3655cf4675cf4695cf56b5cf66c5cf66e5cf7705c"
        "f7725cf8745cf8765cf9785df9795df97b5dfa7d5efa7f5efa815ffb835ffb8560fb8761"
        "fc8961fc8a62fc8c63fc8e64fc9065fd9266fd9467fd9668fd9869fd9a6afd9b6bfe9d6c"
        "fe9f6dfea16efea36ffea571fea772fea973feaa74feac76feae77feb078feb27afeb47b"
        "feb67cfeb77efeb97ffebb81febd82febf84fec185fec287fec488fec68afec88cfeca8d"
        "fecc8ffecd90fecf92fed194fed395fed597fed799fed89afdda9cfddc9efddea0fde0a1"
        "fde2a3fde3a5fde5a7fde7a9fde9aafdebacfcecaefceeb0fcf0b2fcf2b4fcf4b6fcf6b8"
        "fcf7b9fcf9bbfcfbbdfcfdbf"
    ),
}


def _hex_table(digits: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(digits), dtype=np.uint8).reshape(256, 3)


def _gray_table() -> np.ndarray:
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def _signed_table() -> np.ndarray:
    """256 RGB colours: blue (-) -> white (0) -> red (+)."""
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    blue, white, red = (
        np.array([33, 102, 172]),
        np.array([247, 247, 247]),
        np.array([178, 24, 43]),
    )
    colours: np.ndarray = np.where(
        t < 0, white + (blue - white) * -t, white + (red - white) * t
    )
    return colours.astype(np.uint8)


@lru_cache(maxsize=16)
def colour_lut(name: str) -> np.ndarray:
    """The (256, 3) uint8 lookup table of a colour map, read-only.

    An unknown name gives "jet" rather than an error, because a bad name from a
    settings file must not stop an examiner from seeing the heatmap.
    """
    if name == SIGNED_COLOUR_MAP:
        lut = _signed_table()
    elif name in ("gray", "grey"):
        lut = _gray_table()
    else:
        lut = _hex_table(_STORED_TABLES.get(name, _STORED_TABLES[DEFAULT_COLOUR_MAP]))
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


def lut_index(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Table entries (uint8) of ``values`` on the scale ``low..high``; NaN -> low."""
    span = (high - low) or 1.0
    index: np.ndarray = np.clip(
        (np.nan_to_num(values, nan=low) - low) / span * 255, 0, 255
    )
    return index.astype(np.uint8)


def colour_map(
    values: np.ndarray,
    signed: bool,
    peak: float | None = None,
    name: str = DEFAULT_COLOUR_MAP,
) -> tuple[np.ndarray, float, float]:
    """Map -> RGB colours and the value range the colours span.

    ``peak`` defaults to the 99th percentile of the finite magnitudes; the scale is
    ``0..peak`` with ``name`` (unsigned) or ``-peak..peak`` with the signed map.
    """
    if peak is None:
        finite = np.abs(values[np.isfinite(values)])
        peak = float(np.percentile(finite, 99)) if finite.size else 0.0
    low, high = (-peak, peak) if signed else (0.0, peak)
    lut = colour_lut(SIGNED_COLOUR_MAP if signed else name)
    return lut[lut_index(values, low, high)], low, high


def robust_peak(values: np.ndarray) -> float:
    """The display scale's end: the 99th percentile of ``|v|`` over finite values
    (the largest ``|v|`` when that is 0; 1 for an empty or all-zero map)."""
    v = np.asarray(values, dtype=np.float32)
    magnitude = np.abs(v[np.isfinite(v)])
    if not magnitude.size:
        return 1.0
    p = float(np.percentile(magnitude, 99))
    return p if p > 0.0 else (float(magnitude.max()) or 1.0)


def shared_peak(maps: Sequence[np.ndarray]) -> float | None:
    """One colour scale's end for maps drawn together (probe and gallery): the
    larger of their robust peaks, so one colour is one value on both (None: no
    map)."""
    return max((robust_peak(m) for m in maps), default=None)


def shared_floor(maps: Sequence[np.ndarray], top_percent: float) -> float | None:
    """One "show the top x %" cut-off for several maps drawn together (probe and
    gallery), so that one value is shown on both or on neither (None: show all)."""
    if top_percent >= 100.0:
        return None
    finite = [np.abs(m[np.isfinite(m)]) for m in maps]
    values = np.concatenate([f for f in finite if f.size] or [np.zeros(0)])
    if not values.size:
        return None
    if top_percent <= 0.0:
        return float(np.inf)
    return float(np.percentile(values, 100.0 - top_percent))


def colourise(
    values: np.ndarray,
    signed: bool,
    colour_map: str = DEFAULT_COLOUR_MAP,
    top_percent: float = 100.0,
    peak: float | None = None,
    floor: float | None = None,
) -> tuple[np.ndarray, float, float]:
    """Map a heatmap to RGBA for display: ``(rgba uint8 (h, w, 4), low, high)``.

    ``floor``: a cut-off shared with other maps (``shared_floor``): only values
    with ``|v| >= floor`` are shown, instead of this map's own top ``top_percent``.

    The scale is robust to a few extreme values: ``p`` is the 99th percentile of
    ``|v|`` over finite values (the largest ``|v|`` when that is 0); unsigned maps
    ``0..p`` with ``colour_map``, signed maps ``-p..+p`` with the blue-white-red map
    (``colour_map`` is ignored).  NaN (not covered) is transparent, so is every
    value whose ``|v|`` is not in the top ``top_percent`` % of finite values.  Shown
    pixels have alpha 255; the caller applies its opacity.  ``peak`` replaces ``p``
    when several maps share one scale (``robust_peak`` of each, the largest).
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"a heatmap must be 2-D, got shape {v.shape}")
    finite = np.isfinite(v)
    rgba = np.zeros((*v.shape, 4), dtype=np.uint8)
    if not finite.any():
        return rgba, (-1.0 if signed else 0.0), 1.0
    magnitude = np.abs(np.where(finite, v, 0.0))
    finite_magnitude = magnitude[finite]
    p = peak if peak is not None and peak > 0.0 else robust_peak(v)
    low, high = (-p, p) if signed else (0.0, p)
    lut = colour_lut(SIGNED_COLOUR_MAP if signed else colour_map)
    rgba[finite, :3] = lut[lut_index(v[finite], low, high)]
    shown = finite
    if floor is not None:
        shown = finite & (magnitude >= floor)
    elif top_percent < 100.0:
        if top_percent <= 0.0:
            shown = np.zeros_like(finite)
        else:
            threshold = float(np.percentile(finite_magnitude, 100.0 - top_percent))
            shown = finite & (magnitude >= threshold)
    rgba[shown, 3] = 255
    return rgba, low, high


def with_opacity(rgba: np.ndarray, opacity: float) -> np.ndarray:
    """A copy of ``rgba`` with its alpha channel scaled by ``opacity`` (0..1)."""
    out = np.array(rgba, dtype=np.uint8, copy=True)
    alpha = out[..., 3].astype(np.float32) * float(np.clip(opacity, 0.0, 1.0))
    out[..., 3] = np.round(alpha).astype(np.uint8)
    return out
