"""Differential-privacy defenses (Hong et al., arXiv:2002.11497; Geiping et al. Sec. 5.3).

* `dpsgd`: DP-SGD with opacus: per-example gradient clipping at `max_grad_norm`, Gaussian noise of std
  `noise_multiplier * max_grad_norm`, Poisson sampling; the (epsilon, delta) spent is reported by the RDP accountant.
* `batch_clip_noise`: the lab's variant for comparison with the paper: the *batch* gradient is clipped to `clip` and
  noise of std `clip * noise` is added to the mean gradient. It is NOT differentially private (no per-example
  clipping, so one example can dominate a batch gradient); no epsilon is reported for it.
"""

from __future__ import annotations

import warnings

import torch

from tenfold.components.defenses.registry import register_defense
from tenfold.components.victims import augment_batch, lr_step, train


class DPSGD:
    def __init__(self, noise_multiplier: float, max_grad_norm: float, delta: float):
        self.noise, self.clip, self.delta = noise_multiplier, max_grad_norm, delta

    @staticmethod
    def _loop(pmodel, popt, ploader, tcfg, device, gen):
        """The victims' recipe (warm-up, step decay, crop + flip) on opacus' Poisson-sampled batches."""
        for epoch in range(tcfg.epochs):
            steps = len(ploader)
            for step, (xb, yb) in enumerate(ploader):
                for g in popt.param_groups:
                    g["lr"] = lr_step(tcfg, epoch, step, steps)
                if len(xb) == 0:  # Poisson sampling can draw an empty batch
                    continue
                if tcfg.augment:
                    xb = augment_batch(xb, gen, tcfg.crop_pad, tcfg.flip)
                loss = torch.nn.functional.cross_entropy(pmodel(xb.to(device)), yb.to(device))
                popt.zero_grad(set_to_none=True)
                loss.backward()
                popt.step()

    def fit(self, model, x, y, tcfg, device, seed):
        from opacus import PrivacyEngine

        gen = torch.Generator().manual_seed(seed)
        ds = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
        loader = torch.utils.data.DataLoader(ds, batch_size=tcfg.batch_size, shuffle=True, generator=gen)
        model.to(device).train()
        params = model.head.parameters() if tcfg.finetune else model.parameters()
        if tcfg.finetune:
            for p in model.body.parameters():
                p.requires_grad_(False)
        opt = torch.optim.SGD(params, lr=tcfg.lr, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay)
        with warnings.catch_warnings():
            # opacus warns that its secure RNG is off (a benchmark, not a release) and that the first layer's
            # backward hook fires without input gradients; neither changes the result
            warnings.simplefilter("ignore", UserWarning)
            engine = PrivacyEngine(accountant="rdp")
            pmodel, popt, ploader = engine.make_private(
                module=model,
                optimizer=opt,
                data_loader=loader,
                noise_multiplier=self.noise,
                max_grad_norm=self.clip,
                noise_generator=gen,
            )
            self._loop(pmodel, popt, ploader, tcfg, device, gen)
        eps = float(engine.get_epsilon(self.delta))
        pmodel.remove_hooks()  # the victim is used again for evaluation and filtering
        for p in model.parameters():
            p.requires_grad_(True)
        return model.eval(), {
            "noise_multiplier": self.noise,
            "max_grad_norm": self.clip,
            "epsilon": eps,
            "delta": self.delta,
        }


class BatchClipNoise:
    def __init__(self, clip: float, noise: float):
        self.clip, self.noise = clip, noise

    def fit(self, model, x, y, tcfg, device, seed):
        def hook(m, gen):
            params = [p for p in m.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.clip)
            for p in params:
                p.grad.add_(torch.randn(p.grad.shape, generator=gen).to(p.grad) * self.clip * self.noise)

        model = train(model, x, y, tcfg, device, seed, step_hook=hook)
        return model, {"clip": self.clip, "noise": self.noise, "differentially_private": False}


@register_defense(
    "dpsgd",
    stage="differential privacy",
    kind="train",
    needs_clean_data=False,
    reports="epsilon (RDP accountant) at the given delta",
    paper="DP-SGD arXiv:1607.00133 via opacus",
)
def build_dpsgd(cfg, num_classes: int) -> DPSGD:
    return DPSGD(cfg.noise_multiplier, cfg.max_grad_norm, cfg.delta)


@register_defense(
    "batch_clip_noise",
    stage="robust training",
    kind="train",
    needs_clean_data=False,
    reports="clip and noise (NOT differentially private)",
    paper="lab data-poisoning `private-gaussian` (batch-level clip and noise)",
)
def build_batch_clip_noise(cfg, num_classes: int) -> BatchClipNoise:
    return BatchClipNoise(cfg.clip, cfg.noise)
