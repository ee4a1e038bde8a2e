"""GRouNdGAN stage-2 speed and memory: grouped per-gene target generators against the dense masked original.

Usage::

    python benchmarks/groundgan_speed.py            # the full comparison (~15 min on 2 CPU cores)
    python benchmarks/groundgan_speed.py --quick    # 100 and 300 genes, full step at 1000, 2 repeats (< 2 min)

What is timed is one stage-2 **target-generator training step** at batch 1024: TF values (a fixed
random matrix standing in for the frozen causal controller) and fresh per-gene noise go through the
target generators, the cell is assembled and library-size normalised, scored by the stage-2 critic
(``MLPCritic``, hidden 1024-512-256, frozen for this step as under Lightning's toggled optimiser),
then backward and one AdamW (AMSGrad) step on the target-generator parameters. Three formulations:

* ``grouped``: :class:`scsynth.nn.TargetGenerators`, one small MLP per target gene, run as stacked
  per-gene weights with batched matrix products, feature-major, in cache-sized chunks of genes;
* ``grouped-before``: the previous implementation of the same model (kept here only,
  :class:`BeforeTargetGenerators`): the same parameters, activations ``(genes, batch, hidden)``,
  transposed to ``(batch, genes * hidden)`` and back around every BatchNorm, all genes at once;
* ``dense``: the original GRouNdGAN formulation (reference section 1.4), written only here: five
  masked linear layers with a dense ``out x in`` weight and a binary mask each, ``W * M`` formed on
  every forward and kept for backward, a block-diagonal ``H x H`` hidden mask (one tensor shared by
  the three hidden layers), ``BatchNorm1d(H)`` and ReLU after the first four layers, ReLU output.

Before timing, the script checks on a small GRN that the dense model's weight count matches the
reference formula and that, with weights copied gene by gene from the grouped model, both compute
the same outputs and the same gradients (so they are the same function).

The **full stage-2 step** (``--full-step-sizes``) is what one generator step of training costs: five
critic steps (fresh fakes without autograd, critic on real and fake, full-batch gradient penalty by
double backward), the generator step (critic, labeler and anti-labeler terms, labelers of width
2000 as in the paper) and the three labeler steps on fresh fakes and the real batch, with the
current and the ``before`` target generators.

Each configuration runs in its own subprocess, so the reported peak resident memory (``ru_maxrss``)
is that configuration's alone. The dense memory is estimated analytically first and configurations
over ``--max-dense-gib`` are not launched. Timings are medians over ``--repeats`` steps after one
warm-up step. Prints a markdown table and writes ``benchmarks/results/groundgan_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine, markdown_table, rss_bytes  # noqa: E402

GIB = 2**30
WIDTH, DEPTH, NOISE_PER_GENE = 2, 3, 1
CRITIC_HIDDEN = (1024, 512, 256)
LABELER_HIDDEN = (2000, 2000, 2000)
TF_FRACTION = 63 / 1000  # the PBMC tutorial GRN: 63 TFs and 937 targets among 1000 genes
K_MAX = 15


# -- the GRN ---------------------------------------------------------------------------------------
def make_grn(n_genes: int, seed: int = 0, k_max: int = K_MAX) -> dict:
    """TF and target positions among ``n_genes`` and ``k = min(15, n_TF)`` random regulators per target."""
    rng = np.random.default_rng(seed)
    n_tfs = max(1, round(TF_FRACTION * n_genes))
    k = min(k_max, n_tfs)
    perm = rng.permutation(n_genes)
    tf_positions, target_positions = np.sort(perm[:n_tfs]), np.sort(perm[n_tfs:])
    regulators = [np.sort(rng.choice(n_tfs, size=k, replace=False)) for _ in target_positions]
    return {"n_genes": n_genes, "n_tfs": n_tfs, "n_targets": len(target_positions), "k": k,
            "tf_positions": tf_positions, "target_positions": target_positions, "regulators": regulators}


# -- the original dense masked formulation (benchmark only) ----------------------------------------
class _MaskedLinear(nn.Module):
    """GRouNdGAN's masked linear layer: dense ``out x in`` weight, fixed binary mask, ``x @ (W * M).T + b``."""

    def __init__(self, mask: torch.Tensor, init: str) -> None:
        super().__init__()
        n_out, n_in = mask.shape
        self.register_buffer("mask", mask)  # may be shared between layers (the hidden mask)
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.empty(n_out))
        if init == "xavier":  # on the dense matrix, as the reference does, then re-masked
            nn.init.xavier_uniform_(self.weight)
            bound = 1.0 / math.sqrt(n_in)
            nn.init.uniform_(self.bias, -bound, bound)
        else:  # the output layer: Kaiming-normal (fan_in), zero bias
            nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(self.bias)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the W * M temporary is saved by autograd for backward, like the reference's custom function
        return F.linear(x, self.weight * self.mask, self.bias)


class DenseMaskedTargetGenerators(nn.Module):
    """The reference's target generators: one big masked MLP on ``concat[tf_values, noise]``.

    Hidden units are laid out gene by gene (gene ``g`` owns ``h_g = width * (k_g + noise_per_gene)``
    contiguous units), ``H = sum_g h_g``. Masks: input ``H x (n_TF + n_targets * npg)`` (a TF feeds
    all units of every gene it regulates, a gene's noise only its own units), hidden ``H x H``
    block-diagonal (one tensor for all hidden layers), output ``n_targets x H``. Same interface as
    :class:`scsynth.nn.TargetGenerators`.
    """

    def __init__(self, regulators, n_tfs: int, *, width: int = WIDTH, depth: int = DEPTH,
                 noise_per_gene: int = NOISE_PER_GENE) -> None:
        super().__init__()
        regulators = [np.asarray(r, dtype=np.int64).ravel() for r in regulators]
        self.n_tfs, self.n_targets, self.noise_per_gene = n_tfs, len(regulators), noise_per_gene
        sizes = np.array([width * (len(r) + noise_per_gene) for r in regulators], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.n_hidden = n_hidden = int(self.offsets[-1])
        n_in = n_tfs + self.n_targets * noise_per_gene
        input_mask = torch.zeros(n_hidden, n_in)
        hidden_mask = torch.zeros(n_hidden, n_hidden)
        output_mask = torch.zeros(self.n_targets, n_hidden)
        for g, regs in enumerate(regulators):
            units = slice(int(self.offsets[g]), int(self.offsets[g + 1]))
            input_mask[units, torch.as_tensor(regs)] = 1.0
            input_mask[units, n_tfs + g * noise_per_gene : n_tfs + (g + 1) * noise_per_gene] = 1.0
            hidden_mask[units, units] = 1.0
            output_mask[g, units] = 1.0
        self.layers = nn.ModuleList([_MaskedLinear(input_mask, "xavier")])
        self.layers.extend(_MaskedLinear(hidden_mask, "xavier") for _ in range(depth))
        self.norms = nn.ModuleList(nn.BatchNorm1d(n_hidden) for _ in range(depth + 1))
        self.output = _MaskedLinear(output_mask, "kaiming")

    def forward(self, tf_values: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        h = torch.cat([tf_values, noise.reshape(noise.shape[0], -1)], dim=1)
        for layer, norm in zip(self.layers, self.norms, strict=True):
            h = torch.relu(norm(layer(h)))
        return torch.relu(self.output(h))


# -- the previous grouped implementation (benchmark only: the "before" column) ------------------
def _before_group_forward(group, x: torch.Tensor) -> torch.Tensor:
    """``x``: ``(genes, batch, n_in)`` -> ``(batch, genes)``, BatchNorm on ``(batch, genes * hidden)`` copies."""
    n_batch = x.shape[1]
    h = x
    for weight, bias, norm in zip(group.weights, group.biases, group.norms, strict=True):
        h = torch.baddbmm(bias, h, weight)  # (genes, batch, hidden)
        h = norm(h.transpose(0, 1).reshape(n_batch, -1)).reshape(n_batch, group.n_genes, -1).transpose(0, 1)
        h = torch.relu(h)
    out = torch.baddbmm(group.out_bias, h, group.out_weight)  # (genes, batch, 1)
    return torch.relu(out.squeeze(-1).T)


def _before_class():
    from scsynth.nn import TargetGenerators

    class BeforeTargetGenerators(TargetGenerators):
        """The same model and parameters, computed as before the chunked feature-major layout."""

        def forward(self, tf_values: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            n_batch = tf_values.shape[0]
            out = tf_values.new_empty(n_batch, self.n_targets)
            tf_by_gene = tf_values.T
            noise_by_gene = noise.permute(1, 0, 2)
            for i, group in enumerate(self.groups):
                members, regs = getattr(self, f"_members_{i}"), getattr(self, f"_regulators_{i}")
                x = torch.cat([tf_by_gene[regs].transpose(1, 2), noise_by_gene[members]], dim=2)
                out = out.index_copy(1, members, _before_group_forward(group, x))
            return out

    return BeforeTargetGenerators


def dense_weight_count(n_tfs: int, n_targets: int, n_edges: int, *, width: int = WIDTH, depth: int = DEPTH,
                       noise_per_gene: int = NOISE_PER_GENE) -> dict:
    """The reference's sizes (section 1.10): ``H = w (E + n_targets npg)``, dense weights, all parameters, masks."""
    h = width * (n_edges + n_targets * noise_per_gene)
    n_in = n_tfs + n_targets * noise_per_gene
    weights = n_in * h + depth * h * h + h * n_targets
    params = weights + (depth + 1) * h + n_targets + 2 * (depth + 1) * h  # + biases + BatchNorm affine
    masks = n_in * h + h * h + h * n_targets  # the hidden mask stored once
    return {"H": h, "dense_weights": weights, "params": params, "mask_entries": masks}


def dense_memory_estimate(grn: dict, batch_size: int) -> float:
    """Peak bytes of a dense training step (fp32), conservative.

    Parameters, gradients and three AMSGrad buffers (5 P), the masks, the ``W * M`` copies kept for
    backward (one per layer), two ``H x H`` backward temporaries (grad of ``W * M`` and its masked
    copy) and one ``H x H`` optimiser temporary, activations (about six ``B x H`` tensors per block)
    and about 0.6 GiB for the interpreter, torch and the critic.
    """
    n_edges = sum(len(r) for r in grn["regulators"])
    c = dense_weight_count(grn["n_tfs"], grn["n_targets"], n_edges)
    floats = 5 * c["params"] + c["mask_entries"] + c["dense_weights"] + 3 * c["H"] ** 2
    floats += 6 * (DEPTH + 1) * batch_size * c["H"]
    return 4.0 * floats + 0.6 * GIB


@torch.no_grad()
def copy_grouped_to_dense(grouped, dense: DenseMaskedTargetGenerators, attr: str = "data") -> dict:
    """Lay the grouped model's per-gene tensors (``attr``: ``"data"`` or ``"grad"``) out as the dense model's.

    Returns ``{dense parameter or buffer name: tensor}``; with ``attr="data"`` also copies them, and the
    BatchNorm running statistics, into ``dense``. Entries outside every gene's block are zero.
    """
    out = {name: torch.zeros_like(p) for name, p in dense.named_parameters()}
    bn_stats = {f"norms.{i}.{s}": torch.zeros_like(getattr(bn, s))
                for i, bn in enumerate(dense.norms) for s in ("running_mean", "running_var")}
    n_tfs, npg, depth = dense.n_tfs, dense.noise_per_gene, len(dense.norms) - 1

    def get(p):
        return getattr(p, attr)

    for i, group in enumerate(grouped.groups):
        members = getattr(grouped, f"_members_{i}").tolist()
        regs = getattr(grouped, f"_regulators_{i}")
        h = group.n_hidden
        for gi, g in enumerate(members):
            units = torch.arange(int(dense.offsets[g]), int(dense.offsets[g + 1]))
            assert len(units) == h
            cols = torch.cat([regs[gi], n_tfs + g * npg + torch.arange(npg)])
            # input layer: dense (H, n_in) <- grouped (n_in_g, h); a duplicated regulator would add up
            out["layers.0.weight"].index_put_((units[None, :], cols[:, None]), get(group.weights[0])[gi],
                                              accumulate=True)
            for layer in range(depth + 1):
                if layer > 0:
                    out[f"layers.{layer}.weight"][units[:, None], units[None, :]] = get(group.weights[layer])[gi].T
                out[f"layers.{layer}.bias"][units] = get(group.biases[layer])[gi, 0]
                norm = group.norms[layer]
                flat = slice(gi * h, (gi + 1) * h)
                out[f"norms.{layer}.weight"][units] = get(norm.weight)[flat]
                out[f"norms.{layer}.bias"][units] = get(norm.bias)[flat]
                if attr == "data":
                    bn_stats[f"norms.{layer}.running_mean"][units] = norm.running_mean[flat]
                    bn_stats[f"norms.{layer}.running_var"][units] = norm.running_var[flat]
            out["output.weight"][g, units] = get(group.out_weight)[gi, :, 0]
            out["output.bias"][g] = get(group.out_bias)[gi, 0, 0]
    if attr == "data":
        state = dense.state_dict()
        for name, value in {**out, **bn_stats}.items():
            state[name].copy_(value)
    return out


def check_equivalence(seed: int = 0) -> dict:
    """Small GRN with mixed in-degrees (0..5): parameter formula, same outputs and same gradients."""
    from scsynth.nn import TargetGenerators

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_tfs, n_targets, batch = 5, 24, 64
    regulators = [np.sort(rng.choice(n_tfs, size=int(rng.integers(0, n_tfs + 1)), replace=False))
                  for _ in range(n_targets)]
    grouped = TargetGenerators(regulators, n_tfs, width=WIDTH, depth=DEPTH, noise_per_gene=NOISE_PER_GENE).double()
    dense = DenseMaskedTargetGenerators(regulators, n_tfs).double()
    n_edges = sum(len(r) for r in regulators)
    ref = dense_weight_count(n_tfs, n_targets, n_edges)
    dense_weights = sum(m.weight.numel() for m in [*dense.layers, dense.output])
    assert dense.n_hidden == ref["H"], (dense.n_hidden, ref["H"])
    assert dense_weights == ref["dense_weights"], (dense_weights, ref)
    assert sum(p.numel() for p in dense.parameters()) == ref["params"]
    # the masks' non-zeros are exactly the grouped model's weights (one per real connection)
    grouped_weights = sum(p.numel() for name, p in grouped.named_parameters() if "weight" in name and "norms" not in name)
    mask_nnz = sum(int(m.mask.sum()) for m in [*dense.layers, dense.output])
    assert mask_nnz == grouped_weights, (mask_nnz, grouped_weights)
    per_gene = sum(TargetGenerators.n_parameters_per_gene(len(r)) for r in regulators)
    assert sum(p.numel() for p in grouped.parameters()) == per_gene

    # give BatchNorm non-trivial affine parameters and running statistics, then copy
    with torch.no_grad():
        for group in grouped.groups:
            for norm in group.norms:
                norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
                norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2)
    copy_grouped_to_dense(grouped, dense)
    tf = torch.rand(batch, n_tfs, dtype=torch.float64) * 5
    noise = torch.randn(batch, n_targets, NOISE_PER_GENE, dtype=torch.float64)
    result = {"n_tfs": n_tfs, "n_targets": n_targets, "in_degrees": [len(r) for r in regulators], "H": dense.n_hidden,
              "dense_weights": dense_weights, "reference_formula_weights": ref["dense_weights"],
              "mask_nonzeros": mask_nnz, "grouped_weights": grouped_weights}
    for mode in ("train", "eval"):
        grouped.train(mode == "train"), dense.train(mode == "train")
        grouped.zero_grad(), dense.zero_grad()
        out_g, out_d = grouped(tf, noise), dense(tf, noise)
        torch.testing.assert_close(out_d, out_g, rtol=1e-10, atol=1e-10)
        assert out_g.abs().max() > 0
        weights = torch.randn_like(out_g)
        (out_g * weights).sum().backward()
        (out_d * weights).sum().backward()
        expected = copy_grouped_to_dense(grouped, dense, attr="grad")
        grad_diff = 0.0
        for name, p in dense.named_parameters():
            torch.testing.assert_close(p.grad, expected[name], rtol=1e-9, atol=1e-10)
            grad_diff = max(grad_diff, float((p.grad - expected[name]).abs().max()))
        result[f"{mode}_max_abs_output_diff"] = float((out_d - out_g).detach().abs().max())
        result[f"{mode}_max_abs_grad_diff"] = grad_diff
    # the "before" implementation is the same function with the same parameters and statistics
    grouped.train()
    before = _before_class()(regulators, n_tfs, width=WIDTH, depth=DEPTH, noise_per_gene=NOISE_PER_GENE).double()
    before.load_state_dict(grouped.state_dict())
    for mode in ("train", "eval"):
        grouped.train(mode == "train"), before.train(mode == "train")
        grouped.zero_grad(), before.zero_grad()
        out_g, out_b = grouped(tf, noise), before(tf, noise)
        torch.testing.assert_close(out_b, out_g, rtol=1e-10, atol=1e-10)
        (out_g * weights).sum().backward(), (out_b * weights).sum().backward()
        for (name, p), q in zip(grouped.named_parameters(), before.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-9, msg=name)
        for (name, b), c in zip(grouped.named_buffers(), before.buffers(), strict=True):
            torch.testing.assert_close(b, c, rtol=1e-12, atol=1e-12, msg=name)
        result[f"before_{mode}_max_abs_output_diff"] = float((out_b - out_g).detach().abs().max())
    return result


# -- one configuration (runs in its own process) ---------------------------------------------------
def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_worker(n_genes: int, formulation: str, batch_size: int, repeats: int, warmup: int, seed: int,
               threads: int | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    from scsynth.nn import LibrarySizeNormalization, MLPCritic, MLPGenerator, MLPRegressor, TargetGenerators

    torch.manual_seed(seed)
    grn = make_grn(n_genes, seed)
    rss_start = rss_bytes()
    n_tfs, n_targets = grn["n_tfs"], grn["n_targets"]
    cls = {"dense": DenseMaskedTargetGenerators, "grouped-before": _before_class(),
           "full-before": _before_class()}.get(formulation, TargetGenerators)
    gen = cls(grn["regulators"], n_tfs, width=WIDTH, depth=DEPTH, noise_per_gene=NOISE_PER_GENE)
    critic = MLPCritic(n_genes, n_hidden=CRITIC_HIDDEN)
    lsn = LibrarySizeNormalization()
    tf_pos, tgt_pos = torch.as_tensor(grn["tf_positions"]), torch.as_tensor(grn["target_positions"])
    adamw = dict(lr=1e-4, betas=(0.5, 0.9), weight_decay=0.01, amsgrad=True)  # the training plan's defaults
    opt_g = torch.optim.AdamW(gen.parameters(), **adamw)
    full = formulation.startswith("full")
    if full:  # everything a stage-2 step trains, with a frozen controller in eval mode
        controller = MLPGenerator(128, n_genes).eval().requires_grad_(False)
        tf_index = tf_pos
        labeler = MLPRegressor(n_targets, n_tfs, n_hidden=LABELER_HIDDEN)
        anti = MLPRegressor(n_targets, n_tfs, n_hidden=LABELER_HIDDEN)
        opt_c, opt_l, opt_a = (torch.optim.AdamW(m.parameters(), **adamw) for m in (critic, labeler, anti))
        real = lsn(torch.distributions.Gamma(0.5, 0.1).sample((batch_size, n_genes)))
    else:
        tf_pool = torch.rand(batch_size, n_tfs) * 10.0  # stands in for the frozen controller's TF values

    def fake_cells(tf_values):
        targets = gen(tf_values, torch.randn(batch_size, n_targets, NOISE_PER_GENE))
        raw = tf_values.new_zeros(batch_size, n_genes).index_copy(1, tf_pos, tf_values).index_copy(1, tgt_pos, targets)
        return lsn(raw)

    def tf_from_controller():
        with torch.no_grad():
            return controller(torch.randn(batch_size, 128), normalize=False)[:, tf_index]

    def labeler_loss(net, x):
        x = torch.log1p(x)
        return F.mse_loss(net(x[:, tgt_pos]), x[:, tf_pos])

    def step(opt, loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def generator_step():
        critic.requires_grad_(False)
        if not full:
            step(opt_g, -critic(fake_cells(tf_pool)).mean())
        else:
            labeler.requires_grad_(False), anti.requires_grad_(False)
            fake = fake_cells(tf_from_controller())
            step(opt_g, -critic(fake).mean() + labeler_loss(labeler, fake) + labeler_loss(anti, fake))
            labeler.requires_grad_(True), anti.requires_grad_(True)
        critic.requires_grad_(True)

    def full_step():  # n_critic = 5 critic steps with gradient penalty, the generator step, the labelers
        for _ in range(5):
            with torch.no_grad():
                fake = fake_cells(tf_from_controller())
            eps = torch.rand(batch_size, 1)
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
            gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
            step(opt_c, critic(fake).mean() - critic(real).mean() + 10.0 * gp)
        generator_step()
        with torch.no_grad():
            fake = fake_cells(tf_from_controller())
        step(opt_a, labeler_loss(anti, fake))
        step(opt_l, labeler_loss(labeler, fake))
        step(opt_l, labeler_loss(labeler, real))

    run = full_step if full else generator_step
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        run()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in gen.parameters())
    out = {"n_genes": n_genes, "n_tfs": n_tfs, "n_targets": n_targets, "k": grn["k"], "batch_size": batch_size,
           "formulation": formulation, "tg_params": params, "step_times_s": times,
           "step_time_s": statistics.median(times), "repeats": repeats, "warmup": warmup,
           "rss_start_GiB": rss_start / GIB, "peak_rss_GiB": _peak_rss() / GIB, "torch_threads": torch.get_num_threads()}
    if formulation == "dense":
        out["H"] = gen.n_hidden
        out["estimated_GiB"] = dense_memory_estimate(grn, batch_size) / GIB
    return out


def _worker(params: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(params)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": f"exit code {proc.returncode}: {proc.stderr[-2000:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- driver ----------------------------------------------------------------------------------------
def _largest_dense_fit(max_gib: float, batch_size: int, k_max: int = K_MAX) -> int:
    """Largest gene count (multiple of 10) whose dense step is estimated under ``max_gib``."""
    n = 10
    while dense_memory_estimate(make_grn(n + 10), batch_size) / GIB <= max_gib:
        n += 10
    return n


def _ratio(a: dict, b: dict) -> str:
    """``a / b`` of the median step times, ``x``-formatted, or '' when either is missing."""
    if "step_time_s" not in a or "step_time_s" not in b:
        return ""
    return f"{a['step_time_s'] / b['step_time_s']:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,200,300,400,500,1000,2000",
                        help="comma-separated gene counts (n_TF = 6.3%%, k = min(15, n_TF)); dense runs where it fits")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per configuration (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-dense-gib", type=float, default=16.0,
                        help="skip dense configurations whose estimated peak memory exceeds this")
    parser.add_argument("--full-step-sizes", default="1000",
                        help="sizes at which to also time a full stage-2 step (before and after), '' for none")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 100,300, full step at 1000, 2 repeats, dense up to 8 GiB (< 2 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the workers (default: torch's default, all cores)")
    parser.add_argument("--out", type=Path, default=RESULTS / "groundgan_speed.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(**json.loads(args.worker))))
        return
    if args.quick:
        args.sizes, args.full_step_sizes, args.repeats, args.max_dense_gib = "100,300", "1000", 2, 8.0
        if args.out == RESULTS / "groundgan_speed.json":
            args.out = RESULTS / "groundgan_speed_quick.json"

    wall = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    full_sizes = [int(s) for s in args.full_step_sizes.split(",") if s]
    check = check_equivalence(args.seed)
    print(f"equivalence check passed: dense weights = reference formula ({check['dense_weights']}), "
          f"mask non-zeros = grouped weights ({check['mask_nonzeros']}), max |output diff| "
          f"{check['train_max_abs_output_diff']:.1e} (train) / {check['eval_max_abs_output_diff']:.1e} (eval), "
          f"max |grad diff| {check['train_max_abs_grad_diff']:.1e}; before = after to "
          f"{check['before_train_max_abs_output_diff']:.1e}", flush=True)
    largest_fit = _largest_dense_fit(args.max_dense_gib, args.batch_size)
    print(f"dense: largest size estimated to fit in {args.max_dense_gib:g} GiB: ~{largest_fit} genes", flush=True)
    common = dict(batch_size=args.batch_size, repeats=args.repeats, warmup=args.warmup, seed=args.seed,
                  threads=args.threads)
    load_start = os.getloadavg()

    def run(n: int, formulation: str) -> dict:
        out = _worker({"n_genes": n, "formulation": formulation, **common})
        out.setdefault("n_genes", n), out.setdefault("formulation", formulation)
        print(f"{n} genes {formulation}: {out.get('step_time_s', float('nan')):.3f} s/step, "
              f"{out.get('peak_rss_GiB', float('nan')):.2f} GiB {out.get('error', '')}", flush=True)
        return out

    def row(base: dict, label: str, r: dict, **extra) -> dict:
        time_s = r.get("step_time_s", r.get("error", "").splitlines()[0] if "error" in r else "")
        return {**base, "formulation": label, "target-generator parameters": f"{r.get('tg_params', '')}",
                "step time (s) median": time_s, "peak RSS (GiB)": r.get("peak_rss_GiB", ""), **extra}

    results, rows = [], []
    for n in sizes:
        grn = make_grn(n, args.seed)
        n_edges = sum(len(r) for r in grn["regulators"])
        analytic = dense_weight_count(grn["n_tfs"], grn["n_targets"], n_edges)
        estimate = dense_memory_estimate(grn, args.batch_size) / GIB
        base = {"n_genes": n, "n_TF": grn["n_tfs"], "k": grn["k"], "batch": args.batch_size}
        before, grouped = run(n, "grouped-before"), run(n, "grouped")
        grouped.update(dense_params_analytic=analytic["params"], dense_H=analytic["H"], dense_estimated_GiB=estimate)
        results += [before, grouped]
        if estimate > args.max_dense_gib:
            dense = {"n_genes": n, "formulation": "dense", "skipped": True, "estimated_GiB": estimate, "H": analytic["H"],
                     "tg_params_analytic": analytic["params"]}
            print(f"{n} genes dense: does not fit (estimated {estimate:.1f} GiB)", flush=True)
        else:
            dense = run(n, "dense")
            dense.setdefault("estimated_GiB", estimate)
        results.append(dense)
        rows.append(row(base, "grouped before", before))
        rows.append(row(base, "grouped", grouped, **{"before/after": _ratio(before, grouped)}))
        d_ok = "step_time_s" in dense
        d_params = dense["tg_params"] if d_ok else analytic["params"]
        d_row = row(base, "dense masked", dense)
        d_row["target-generator parameters"] = f"{d_params}" + ("" if d_ok else " (formula)")
        if dense.get("skipped"):
            d_row["step time (s) median"] = f"does not fit (estimated {estimate:.1f} GiB)"
        if "tg_params" in grouped:
            d_row["params dense/grouped"] = f"{d_params / grouped['tg_params']:.0f}x" + ("" if d_ok else " (formula)")
        d_row["time dense/grouped"] = _ratio(dense, grouped)
        rows.append(d_row)
        if n in full_sizes:
            full_before, full = run(n, "full-before"), run(n, "full")
            results += [full_before, full]
            rows.append(row(base, "full stage-2 step, before", full_before))
            rows.append(row(base, "full stage-2 step", full, **{"before/after": _ratio(full_before, full)}))

    def find(formulation: str, n: int) -> dict:
        return next((r for r in results if r.get("formulation") == formulation and r.get("n_genes") == n), {})

    compared = [r for r in results if r.get("formulation") == "dense" and "step_time_s" in r]
    summary = {}
    if compared:
        n = max(r["n_genes"] for r in compared)
        d, g = find("dense", n), find("grouped", n)
        summary = {"largest_common_n_genes": n, "param_ratio": d["tg_params"] / g["tg_params"],
                   "time_ratio": d["step_time_s"] / g["step_time_s"]}
        if "step_time_s" in find("dense", 300):
            summary["time_ratio_300"] = find("dense", 300)["step_time_s"] / find("grouped", 300)["step_time_s"]
    for key, formulation in (("tg_step_1000_s", "grouped"), ("tg_step_1000_before_s", "grouped-before"),
                             ("full_step_1000_s", "full"), ("full_step_1000_before_s", "full-before")):
        if "step_time_s" in find(formulation, 1000):
            summary[key] = find(formulation, 1000)["step_time_s"]
    targets = {"tg_step_1000_s": 0.5, "full_step_1000_s": 2.5, "time_ratio_300": 50}
    summary["targets_met"] = {k: (summary[k] >= v if k.startswith("time") else summary[k] <= v)
                              for k, v in targets.items() if k in summary}
    total = time.perf_counter() - wall
    load_end = os.getloadavg()
    columns = ["n_genes", "n_TF", "k", "batch", "formulation", "target-generator parameters", "step time (s) median",
               "before/after", "peak RSS (GiB)", "params dense/grouped", "time dense/grouped"]
    report = [markdown_table(rows, columns), ""]
    if compared:
        report.append(f"Largest size where dense ran: {summary['largest_common_n_genes']} genes: "
                      f"{summary['param_ratio']:.0f}x fewer parameters, {summary['time_ratio']:.0f}x faster steps.")
    if summary["targets_met"]:
        report.append("Targets: " + ", ".join(f"{k} {'met' if ok else 'missed'} ({summary[k]:.3g} vs {targets[k]})"
                                              for k, ok in summary["targets_met"].items()) + ".")
    report.append(f"Medians of {args.repeats} steps after {args.warmup} warm-up. Dense estimated to fit in "
                  f"{args.max_dense_gib:g} GiB up to ~{largest_fit} genes. Total runtime {total:.0f} s; load average at "
                  f"start/end {load_start[0]:.1f}/{load_end[0]:.1f} on {os.cpu_count()} cores.")
    print("\n## GRouNdGAN stage-2 target-generator training step (CPU, fp32)\n")
    print("\n".join(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(report) + "\n")  # included by the docs
    payload = {"machine": machine(), "settings": {**vars(args), "out": str(args.out), "width": WIDTH, "depth": DEPTH,
                                                  "noise_per_gene": NOISE_PER_GENE, "critic_hidden": CRITIC_HIDDEN,
                                                  "labeler_hidden": LABELER_HIDDEN, "tf_fraction": TF_FRACTION,
                                                  "k_max": K_MAX},
               "equivalence_check": check, "dense_largest_fit_estimate_n_genes": largest_fit, "results": results,
               "summary": summary, "targets": targets, "total_runtime_s": total,
               "load_average_1_5_15min": {"start": load_start, "end": load_end}}
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
