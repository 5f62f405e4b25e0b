"""Richardson-Lucy deconvolution: the iterative maximum-likelihood restoration of
an image blurred by a stated kernel (motion, Gaussian, box)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.params import Param, ParamValue, int_param
from core.processing.base import Operation, OperationInfo, StepContext, register
from core.processing.psf import (
    PSF_PARAMS,
    check_psf,
    convolve_circular,
    otf,
    pad_for,
    psf_from_params,
    reflect_pad,
)
from core.processing.util import to_uint8

# a ratio's denominator below this is treated as this (no division by zero)
EPSILON = 1e-12


@register
class RichardsonLucy(Operation):
    info = OperationInfo(
        op_id="richardson_lucy",
        display_name="Richardson-Lucy deconvolution",
        description=(
            "Undoes the stated blur kernel (motion: a line of the given length and "
            "angle sampled 16 points per pixel and shared bilinearly; gaussian; box; "
            "each summing to 1) by the given number of Richardson-Lucy iterations "
            "estimate <- estimate * (observed / (estimate * K)) * flipped K, starting "
            "from the observed image, each channel alike in float64 with circular "
            "numpy FFT convolution on the image mirrored by three times the "
            "kernel's side on every edge (edge pixel not repeated); the padding is "
            "cropped off and the result rounded half to even and clipped to 0..255."
        ),
        category="restoration",
        implementation=(
            "own numpy loop (numpy.fft.rfft2 / irfft2, float64), kernels built in numpy"
        ),
        params=(
            *PSF_PARAMS,
            Param(
                "iterations",
                int,
                30,
                "number of iterations (more = sharper, and more noise and ringing)",
                1,
                200,
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
        observed = reflect_pad(rgb.astype(np.float64), pad)
        shape = observed.shape[:2]
        forward = otf(kernel, shape)
        backward = otf(kernel[::-1, ::-1].copy(), shape)
        estimate = observed.copy()
        for _ in range(int_param(params, "iterations")):
            ctx.check_cancelled()
            blurred = convolve_circular(estimate, forward)
            ratio = observed / np.maximum(blurred, EPSILON)
            estimate = estimate * convolve_circular(ratio, backward)
        return to_uint8(estimate[pad : pad + height, pad : pad + width])
