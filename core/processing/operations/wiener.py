"""Wiener deconvolution: undo a stated blur (motion, Gaussian, box) in the
frequency domain, with a noise-to-signal ratio that limits noise amplification."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, float_param
from core.processing.base import Operation, OperationInfo, StepContext, register
from core.processing.psf import (
    PSF_PARAMS,
    check_psf,
    otf,
    pad_for,
    psf_from_params,
    reflect_pad,
)
from core.processing.util import to_uint8


@register
class Wiener(Operation):
    info = OperationInfo(
        op_id="wiener",
        display_name="Wiener deconvolution",
        description=(
            "Undoes the stated blur kernel (motion: a line of the given length and "
            "angle sampled 16 points per pixel and shared bilinearly; gaussian; box; "
            "each summing to 1) by multiplying each channel's spectrum by "
            "conj(H) / (|H|^2 + nsr), after mirroring the image by three times the "
            "kernel's side on every edge (edge pixel not repeated), with numpy FFTs "
            "in float64; the padding is cropped off and the result rounded half to "
            "even and clipped to 0..255."
        ),
        category="restoration",
        implementation="numpy.fft.rfft2 / irfft2 (float64), kernels built in numpy",
        params=(
            *PSF_PARAMS,
            Param(
                "nsr",
                float,
                0.01,
                "noise-to-signal power ratio (larger = less sharpening, less noise)",
                1e-6,
                10.0,
            ),
        ),
    )

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        check_psf(self.info.op_id, params, height, width)

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        kernel = psf_from_params(params)
        pad = pad_for(kernel)
        height, width = rgb.shape[:2]
        padded = reflect_pad(rgb.astype(np.float64), pad)
        transfer = otf(kernel, padded.shape[:2])
        gain = np.conj(transfer) / (np.abs(transfer) ** 2 + float_param(params, "nsr"))
        spectrum = np.fft.rfft2(padded, axes=(0, 1)) * gain[:, :, None]
        restored = np.fft.irfft2(spectrum, s=padded.shape[:2], axes=(0, 1))
        return to_uint8(restored[pad : pad + height, pad : pad + width])
