"""Center smoothing (Kumar & Goldstein, arXiv:2102.09701): certified robustness for functions with
vector-valued (metric-space) outputs.

The smoothed function f_bar(x) is the center of the smallest ball that holds at least half of the probability mass
of f(x + N(0, sigma^2 I)). `Smooth` estimates it and certifies it:

1. center: draw n_pred outputs f(x + noise); the center is the sample with the smallest median distance to all
   samples (a beta = 2 approximation of the minimum enclosing ball of half the mass), r the median. The
   high-dimensional variant scores only n_cntr candidate centers against the n_pred samples.
2. abstain test: with n_pred fresh samples, p_hat = share within r of the center; Delta_1 = sqrt(ln(2/alpha_1) /
   (2 n_pred)), Delta_2 = 1/2 - (p_hat - Delta_1); abstain unless max(Delta_1, Delta_2) <= Delta.
3. certificate for an l2 input radius eps_in: q = Phi(Phi^-1(1/2 + Delta) + eps_in / sigma) + sqrt(ln(1/alpha_2) /
   (2 n_cert)) (no certificate when q > 1); R = the empirical q-quantile of d(f(x + noise), center) over n_cert
   samples; eps_out = (1 + beta) R = radius_coeff * R. Then d(f_bar(x), f_bar(x')) <= eps_out for every
   ||x - x'|| <= eps_in with probability at least 1 - alpha_1 - alpha_2.
4. the smoothing error d(center, f(x)) says how far smoothing moved the output on the clean input.

Sampling is batched under `torch.inference_mode` on the input's device with one seeded generator per input, the
median step runs over blocks of the distance matrix (never n_pred^2 values at once), and the certificate distances
for several eps_in come from one set of n_cert samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from scipy.stats import norm

from tenfold.studies.smoothing.distances import Distance, get_distance, pairwise_blocks


@dataclass
class Certificate:
    """The outcome of `Smooth.certify` for one input."""

    abstained: bool
    radius: float  # r: median distance of the center to the center-estimation samples
    p_hat: float  # share of fresh samples within r of the center
    delta_1: float
    delta_2: float
    smoothing_error: float | None = None  # d(center, f(x)); None when abstained
    eps_out: dict[float, float | None] = field(default_factory=dict)  # None: no certificate at that eps_in
    quantile: dict[float, float | None] = field(default_factory=dict)
    center: torch.Tensor | None = None  # flattened output

    def certified(self, eps_in: float) -> bool:
        return not self.abstained and self.eps_out.get(eps_in) is not None


class Smooth:
    """Center smoothing of `base` (a callable or module mapping a batch of inputs to a batch of outputs).

    Defaults are the official code's: n_pred = 10^4, n_cert = 10^6, n_cntr = 30, alpha_1 = alpha_2 = 0.005,
    Delta = 0.05, radius_coeff = 1 + beta = 3. `distance` is a name from `tenfold.studies.smoothing.distances` or a
    callable on flattened outputs (..., D). A module base is put in eval mode (batch norm uses its running
    statistics, so each sample's output does not depend on the other samples of its batch) unless `eval_mode=False`,
    which reproduces the official code (it never called `.eval()`).
    """

    def __init__(
        self,
        base: Callable[[torch.Tensor], torch.Tensor],
        distance: str | Distance,
        sigma: float,
        n_pred: int = 10_000,
        n_cert: int = 1_000_000,
        n_cntr: int = 30,
        alpha_1: float = 0.005,
        alpha_2: float = 0.005,
        delta: float = 0.05,
        radius_coeff: float = 3.0,
        output_is_hd: bool = False,
        batch_size: int = 1000,
        block_elems: int = 1 << 22,
        eval_mode: bool = True,
    ):
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if min(n_pred, n_cert, n_cntr, batch_size) < 1:
            raise ValueError("n_pred, n_cert, n_cntr and batch_size must be positive")
        if not (0 < alpha_1 < 1 and 0 < alpha_2 < 1 and 0 < delta < 0.5):
            raise ValueError("need 0 < alpha_1, alpha_2 < 1 and 0 < delta < 1/2")
        self.base, self.sigma = base, float(sigma)
        self.n_pred, self.n_cert, self.n_cntr = int(n_pred), int(n_cert), int(n_cntr)
        self.alpha_1, self.alpha_2, self.delta = float(alpha_1), float(alpha_2), float(delta)
        self.radius_coeff, self.output_is_hd = float(radius_coeff), bool(output_is_hd)
        self.batch_size, self.block_elems = int(batch_size), int(block_elems)
        self._distance_spec = distance
        self._dist: Distance | None = distance if callable(distance) else None
        if eval_mode and isinstance(base, torch.nn.Module):
            base.eval()

    # ------------------------------------------------------------------ sampling
    def _distance(self, out_shape: Sequence[int]) -> Distance:
        if self._dist is None:
            self._dist = get_distance(self._distance_spec, out_shape)
        return self._dist

    def _forward(self, xb: torch.Tensor) -> torch.Tensor:
        out = self.base(xb)
        self._distance(tuple(out.shape[1:]))
        return out.reshape(out.shape[0], -1)

    def noise_batches(self, x: torch.Tensor, n: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
        """n noisy copies of x in batches of `batch_size`: x + sigma * N(0, I), drawn from `gen`."""
        done = 0
        while done < n:
            b = min(self.batch_size, n - done)
            yield x.unsqueeze(0) + self.sigma * torch.randn(
                (b, *x.shape), generator=gen, device=x.device, dtype=x.dtype
            )
            done += b

    def outputs(self, x: torch.Tensor, n: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
        """Flattened base outputs on n noisy copies of x, one batch at a time."""
        with torch.inference_mode():
            for xb in self.noise_batches(x, n, gen):
                yield self._forward(xb)

    def sample(self, x: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
        """All n flattened outputs as one (n, D) tensor."""
        return torch.cat(list(self.outputs(x, n, gen)), dim=0)

    # ------------------------------------------------------------------ the three steps
    def median_distances(self, candidates: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """Median distance of each candidate to all samples (lower median), one block of rows at a time."""
        dist = self._dist
        meds = torch.empty(candidates.shape[0], dtype=torch.float64, device=candidates.device)
        with torch.inference_mode():
            for i, block in pairwise_blocks(dist, candidates, samples, self.block_elems):
                meds[i : i + block.shape[0]] = block.median(dim=1).values
        return meds

    def compute_center(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, float]:
        """(center, r): the sample (or, for high-dimensional outputs, the candidate) with the least median
        distance to n_pred samples, and that median distance."""
        if self.output_is_hd:
            candidates = self.sample(x, self.n_cntr, gen)
            dist = self._dist
            cols = [dist(candidates.unsqueeze(1), z.unsqueeze(0)) for z in self.outputs(x, self.n_pred, gen)]
            meds = torch.cat(cols, dim=1).median(dim=1).values
        else:
            candidates = self.sample(x, self.n_pred, gen)
            meds = self.median_distances(candidates, candidates)
        idx = int(torch.argmin(meds))
        return candidates[idx], float(meds[idx])

    def acceptance(
        self, x: torch.Tensor, center: torch.Tensor, radius: float, gen: torch.Generator
    ) -> tuple[bool, float, float, float]:
        """(accepted, p_hat, Delta_1, Delta_2) from n_pred fresh samples."""
        inside = 0
        for z in self.outputs(x, self.n_pred, gen):
            inside += int((self._dist(z, center.unsqueeze(0)) <= radius).sum())
        p_hat = inside / self.n_pred
        ok, d1, d2 = self.abstain_test(p_hat)
        return ok, p_hat, d1, d2

    def abstain_test(self, p_hat: float) -> tuple[bool, float, float]:
        """(accepted, Delta_1, Delta_2) for a share p_hat of fresh samples within r of the center."""
        d1 = math.sqrt(math.log(2 / self.alpha_1) / (2 * self.n_pred))
        d2 = 0.5 - (p_hat - d1)
        return max(d1, d2) <= self.delta, d1, d2

    def quantile_level(self, eps_in: float) -> float | None:
        """q = Phi(Phi^-1(1/2 + Delta) + eps_in / sigma) + sqrt(ln(1/alpha_2) / (2 n_cert)); None when q > 1."""
        q = norm.cdf(norm.ppf(0.5 + self.delta) + eps_in / self.sigma)
        q += math.sqrt(math.log(1 / self.alpha_2) / (2 * self.n_cert))
        return float(q) if 0.0 <= q <= 1.0 else None

    @staticmethod
    def order_statistic(dists: torch.Tensor, q: float) -> float:
        """The empirical q-quantile: the smallest R with at least a share q of the distances <= R."""
        k = min(len(dists), max(1, math.ceil(q * len(dists))))
        return float(torch.kthvalue(dists.double().cpu(), k).values)

    def certify(self, x: torch.Tensor, eps_in: float | Sequence[float], seed: int = 0) -> Certificate:
        """Center, abstain test and certificates for every eps_in of one input x (without batch dimension)."""
        eps_list = [float(eps_in)] if isinstance(eps_in, (int, float)) else [float(e) for e in eps_in]
        gen = torch.Generator(device=x.device).manual_seed(int(seed))
        center, radius = self.compute_center(x, gen)
        ok, p_hat, d1, d2 = self.acceptance(x, center, radius, gen)
        cert = Certificate(
            abstained=not ok,
            radius=radius,
            p_hat=p_hat,
            delta_1=d1,
            delta_2=d2,
            eps_out={e: None for e in eps_list},
            quantile={e: self.quantile_level(e) for e in eps_list},
        )
        if not ok:
            return cert
        with torch.inference_mode():
            clean = self._forward(x.unsqueeze(0))[0]
        cert.center = center
        cert.smoothing_error = float(self._dist(center, clean))
        dists = torch.cat([self._dist(z, center.unsqueeze(0)) for z in self.outputs(x, self.n_cert, gen)])
        for e in eps_list:
            q = cert.quantile[e]
            if q is not None:
                cert.eps_out[e] = self.radius_coeff * self.order_statistic(dists, q)
        return cert
