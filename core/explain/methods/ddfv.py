"""DDFV - Discriminative Deep Feature Visualization (Xu, Lu & Ebrahimi 2023),
feature-guided explanation by face reconstruction, Algorithm 1.

For each image of the pair (A, with B the other):

1. C_A = the model's feature map at the reconstructor's tap; I_A^R = Recon(C_A).
2. For every channel i: C'_A = C_A with the maximum of channel i set to 0;
   Residual[i] = |I_A^R - Recon(C'_A)|, averaged over the colour channels and
   normalised to [0, 1] by its maximum (a channel whose maximum is already 0 - a
   silent channel - changes nothing and gets a zero residual).
3. weights_i = w_i - (T - t(0)) / c, where T is the decision threshold as a cosine,
   c the number of channels and w_i, t(0) as below: the weights sum to s - T.
4. H = sum_i Residual[i] * weights_i;  S = |H|,  S+ = ReLU(H),  S- = ReLU(-H).

Channel weights.  In Xu et al. 2023 the embedding F is a global max-pool of C, so
channel i *is* embedding dimension i and weights_i = f^_Ai f^_Bi - T (eq. 1 read
channel-wise).  The default model computes its descriptor with further residual
blocks and a fully connected layer after the tap, so there is no one-to-one channel
<-> dimension.  We use each channel's share of the score by integrated gradients in
feature space, from the all-zero map to C_A:

    t(C) = F(C) . F^_B / ||F_A||                      (||F_A|| held at its value)
    w_i  = sum_xy C_A[i,x,y] * mean_k dt/dC[i,x,y] (alpha_k C_A),  alpha_k = (k+½)/m

so that sum_i w_i = t(C_A) - t(0) = s - t(0) (completeness, up to the m-step
quadrature error, which the notes report).  For the paper's max-pool architecture
t is linear in C with t(0) = 0 and w_i is exactly f^_Ai f^_Bi - the paper's weight.
(Plain gradient × activation is not enough here: the blocks after the tap have
biases, and on the default model its terms summed to about 0 for a pair at cosine
0.97.)

The threshold.  Algorithm 1 writes ``weights = F_A ⊗ F_B - T``; subtracting the whole
threshold from every one of c channel terms (each about s/c) would make every
weight negative for any realistic T, so - as FGGB does (Lu et al. 2024, eq. 4) - we
subtract T/c: the weights then sum to s - T, positive exactly when the model
accepts.

Masking.  The pseudo-code initialises C'_A once before the loop, which read
literally accumulates the masking over channels; the text describes "a channel-wise
mapping" with one channel modified at a time.  We follow the text by default;
``cumulative_masking=true`` runs the literal reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.explain.base import (
    ChipMaps,
    ExplainContext,
    Explainer,
    ExplainerInfo,
    Param,
    ParamValue,
    int_param,
    optional_str_param,
    register,
)
from core.models.base import FaceModel
from core.reconstruct.network import (
    LoadedReconstructor,
    check_matches,
    find_reconstructor,
    load_reconstructor_cached,
)


def reconstructor_for(
    model: FaceModel, path: str | Path | None = None
) -> LoadedReconstructor:
    """The checked reconstructor for ``model`` (``BadInputError`` saying how to train
    one when there is none)."""
    loaded = load_reconstructor_cached(find_reconstructor(model, path))
    check_matches(loaded, model)
    return loaded


def channel_weights(
    ctx: ExplainContext, side: int, tap: str, steps: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Feature map C (c, h, w), channel shares w_i of t(C) - t(0) by integrated
    gradients (``steps`` points), and t(0)."""
    model = ctx.model
    embedding = ctx.embeddings[side].to(ctx.device)
    reference = ctx.other(side).to(ctx.device)
    direction = reference / (reference.norm() * embedding.norm())  # t = F . direction
    with torch.inference_mode(), model.capture([tap]) as captured:
        model._forward(ctx.inputs[side])
    features = captured[tap][0].clone()
    alphas = (torch.arange(steps, device=ctx.device) + 0.5) / steps
    shares = torch.zeros(features.shape[0], device=ctx.device)
    # the replaced map must match the pass the hook sees: one alpha per pass for a
    # backend that splits batches itself
    per_pass = ctx.batch_size if model.forwards_whole_batches else 1
    with torch.enable_grad():
        for start in range(0, steps, per_pass):
            batch = alphas[start : start + per_pass]
            scaled = (batch[:, None, None, None] * features[None]).requires_grad_()
            # the tap's output is replaced by alpha * C_A (in this thread's passes)
            with model.replacing_output(tap, lambda _output, new=scaled: new):
                inputs = ctx.inputs[side].expand(len(batch), -1, -1, -1)
                # one pass, no flip-averaging: the hook's map belongs to this view
                embedded = model._forward(inputs).reshape(len(batch), -1)
                score = (embedded @ direction).sum()
            (gradient,) = torch.autograd.grad(score, [scaled])
            shares += (gradient.sum(0) * features).sum(dim=(1, 2)) / steps
        with model.replacing_output(tap, torch.zeros_like), torch.inference_mode():
            at_zero = float(model._forward(ctx.inputs[side]).ravel() @ direction)
    return features, shares.detach(), at_zero


def masked_feature_maps(features: torch.Tensor, cumulative: bool) -> torch.Tensor:
    """(c, c, h, w): map i has the maximum of channel i (and, cumulative, of every
    channel before it) set to 0."""
    channels = features.shape[0]
    flat = features.reshape(channels, -1)
    peak = flat.argmax(dim=1)
    masked = flat.unsqueeze(0).repeat(channels, 1, 1)  # (c maps, c channels, hw)
    rows = torch.arange(channels, device=features.device)
    if cumulative:
        keep = rows[:, None] >= rows[None, :]  # map i masks channels 0..i
        map_index, channel_index = keep.nonzero(as_tuple=True)
        masked[map_index, channel_index, peak[channel_index]] = 0.0
    else:
        masked[rows, rows, peak] = 0.0
    return masked.reshape(channels, *features.shape)


def residual_maps(
    ctx: ExplainContext,
    reconstructor: torch.nn.Module,
    features: torch.Tensor,
    cumulative: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised residuals (c, H, W) and the unmodified reconstruction (3, H, W)."""
    channels = features.shape[0]
    with torch.inference_mode():
        rebuilt = reconstructor(features[None])[0]
        residuals = torch.empty(channels, *rebuilt.shape[1:], device=features.device)
        masked = masked_feature_maps(features, cumulative)
        for start in range(0, channels, ctx.batch_size):
            stop = min(channels, start + ctx.batch_size)
            changed = reconstructor(masked[start:stop])
            residual = (rebuilt[None] - changed).abs().mean(dim=1)  # colour -> pixel
            peak = residual.flatten(1).amax(dim=1).clamp_min(1e-12)
            residuals[start:stop] = residual / peak[:, None, None]
            ctx.step(stop - start, "reconstructing with each channel masked")
    return residuals, rebuilt


def psnr_db(reconstruction: torch.Tensor, chip: torch.Tensor) -> float:
    mse = float(((reconstruction - chip) ** 2).mean())
    return 10.0 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12), device="cpu")).item()


@register
class DDFV(Explainer):
    info = ExplainerInfo(
        method_id="ddfv",
        map_units=(
            "relative: decoder changes weighted by how far the two faces' "
            "features agree (no physical unit)"
        ),
        display_name="DDFV (face reconstruction)",
        reference="ddfv",  # core.references
        citation=(
            "Z. Xu, Y. Lu, T. Ebrahimi, Discriminative Deep Feature Visualization "
            "for Explainable Face Recognition (EPFL MMSPG), Algorithm 1"
        ),
        description=(
            "A small decoder, trained to redraw the face from what the network "
            "sees inside it, shows which part of the face each internal detector "
            "stands for: switching a detector's strongest response off changes "
            "that part of the redrawn face. Detectors on which the two faces "
            "agree paint their part as similar, those on which they disagree as "
            "dissimilar. Needs a reconstructor trained for the model."
        ),
        kind="gradient",
        has_dissimilarity=True,
        params=(
            Param(
                "reconstructor",
                str,
                None,
                "reconstructor file; empty = the one trained for this model (user "
                "folder, then the one shipped with the application)",
                optional=True,
            ),
            Param(
                "ig_steps",
                int,
                32,
                "integration steps for the channel weights (more = the weights add "
                "up to the score more exactly)",
                minimum=2,
                maximum=1024,
            ),
            Param(
                "cumulative_masking",
                bool,
                False,
                "mask the channels cumulatively (Algorithm 1's pseudo-code read "
                "literally) instead of one at a time (the paper's text)",
            ),
        ),
    )

    def cache_extras(
        self, model: FaceModel, params: Mapping[str, ParamValue]
    ) -> dict[str, Any]:
        reconstructor = reconstructor_for(
            model, optional_str_param(params, "reconstructor")
        )
        return {"reconstructor_sha256": reconstructor.sha256}

    def compute(self, ctx: ExplainContext) -> tuple[ChipMaps, ChipMaps]:
        loaded = reconstructor_for(
            ctx.model, optional_str_param(ctx.params, "reconstructor")
        )
        reconstructor = loaded.network.to(ctx.device)
        tap = loaded.card.tap
        cumulative = bool(ctx.params["cumulative_masking"])
        channels = loaded.card.feature_shape[0]
        ctx.notes.append(
            f"reconstructor {loaded.path.name} (SHA-256 {loaded.sha256[:12]}…), "
            f"decodes layer {tap}; trained on "
            f"{loaded.card.data.get('images_used', '?')} faces"
        )
        steps = int_param(ctx.params, "ig_steps")
        ctx.start(2 * channels)
        maps = []
        for side in (0, 1):
            features, shares, at_zero = channel_weights(ctx, side, tap, steps)
            residuals, rebuilt = residual_maps(ctx, reconstructor, features, cumulative)
            # Algorithm 1, "weights <- F_A (x) F_B - T", with T shared over channels
            weights = shares - (ctx.cosine_threshold - at_zero) / channels
            signed = torch.einsum("chw,c->hw", residuals, weights)  # H
            maps.append(ChipMaps.from_signed(signed.cpu().numpy()))
            chip = ctx.pair.sides[side].chip
            target = torch.from_numpy(chip).permute(2, 0, 1).float().to(ctx.device)
            ctx.notes.append(
                f"{ctx.pair.sides[side].side}: channel weights sum to "
                f"{float(weights.sum()):+.4f} = score - threshold "
                f"{ctx.similarity - ctx.cosine_threshold:+.4f} up to the "
                f"{steps}-step integration error; reconstruction PSNR "
                f"{psnr_db(rebuilt, target / 255.0):.1f} dB"
            )
        return maps[0], maps[1]
