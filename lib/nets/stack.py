"""Several runs as one network: N models of one architecture trained side by side on the same batches.

The runs of a section differ only in optimiser settings (learning rate, schedule, weight decay) and seed; they
share the data and the shapes. Runs of one seed share the batches (crops, flips, mixup draws) too; runs of
different seeds each get their own batch, side by side in the channels of the first layer's input. `stack_models` builds
one "wide" network whose every layer computes all N models' layers at once: convolution weights are
concatenated along the output channels and the convolution runs with N times the groups, so model n's
channels only ever see model n's channels; BatchNorm over N*C channels is each model's own BatchNorm; a linear
layer is a batched matrix product (a hidden one keeps model n's units in the n-th slice of the features, the
classifier, the model's last Linear, returns N x B x classes). Pooling, dropout and activations act per channel
or per element already and stay as they are. The GPU then sees one step of N times the work instead of N small
steps (bench/RESULTS.md measures what this gains).

The N source models keep their own parameters (the wide layers read them, and autograd hands each its own
gradient), so each run keeps its own optimiser and checkpoint, in exactly the single-run format. Their
BatchNorm running statistics become views into the wide layer's buffers, so they too stay each model's own.
What it is not: a different model. `tests/test_core.py` checks that a stacked step equals N separate steps (with
dropout the masks are other draws from the same distribution, so only the law of a step is the same).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class StackedConv(nn.Module):
    """N convolutions of the same shape as one grouped convolution: input B x (N*C_in) x H x W -> B x (N*C_out)
    x H' x W'. The first layer (`first_layer`) also takes one image batch all models share, B x C_in x H x W
    (runs of one seed see the same images); given N batches side by side, B x (N*C_in), model n reads the n-th
    (runs of different seeds each see their own)."""

    def __init__(self, parts: list[nn.Conv2d], first_layer: bool):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        first = parts[0]
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.in_channels, self.first_layer, self.groups = first.in_channels, first_layer, first.groups * len(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.cat([p.weight for p in self.parts])  # (N*C_out) x C_in/groups x k x k
        bias = None if self.parts[0].bias is None else torch.cat([p.bias for p in self.parts])
        shared = self.first_layer and x.shape[1] == self.in_channels  # one batch for all: every model reads it
        groups = self.groups // len(self.parts) if shared else self.groups
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class StackedBatchNorm(nn.Module):
    """N BatchNorm2d layers of C channels as one over N*C channels (statistics are per channel, so per model).

    The running statistics live here; each source layer's buffers are replaced by views of its slice."""

    def __init__(self, parts: list[nn.BatchNorm2d]):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        first = parts[0]
        self.momentum, self.eps, channels = first.momentum, first.eps, first.num_features
        self.register_buffer("running_mean", torch.cat([p.running_mean for p in parts]))
        self.register_buffer("running_var", torch.cat([p.running_var for p in parts]))
        self.register_buffer("num_batches_tracked", torch.stack([p.num_batches_tracked for p in parts]))
        for n, p in enumerate(parts):  # plain attribute assignment keeps them registered buffers of `p`
            p.running_mean = self.running_mean[n * channels:(n + 1) * channels]
            p.running_var = self.running_var[n * channels:(n + 1) * channels]
            p.num_batches_tracked = self.num_batches_tracked[n]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        weight = torch.cat([p.weight for p in self.parts])
        bias = torch.cat([p.bias for p in self.parts])
        return F.batch_norm(x, self.running_mean, self.running_var, weight, bias, self.training, self.momentum,
                            self.eps)


class StackedLinear(nn.Module):
    """N linear layers: features B x (N*F) -> logits N x B x classes (`classifier`), or -> B x (N*H) for a hidden
    layer (model n's H units in slice n, as its F features came in)."""

    def __init__(self, parts: list[nn.Linear], classifier: bool):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_models = len(self.parts)
        features = x.view(x.shape[0], n_models, -1)  # B x N x F
        weight = torch.stack([p.weight for p in self.parts])  # N x out x F
        bias = torch.stack([p.bias for p in self.parts])  # N x out
        if self.classifier:
            return torch.einsum("bnf,nkf->nbk", features, weight) + bias[:, None, :]
        return (torch.einsum("bnf,nkf->bnk", features, weight) + bias).flatten(1)


class Single(nn.Module):
    """One model with the stacked interface: logits 1 x B x classes (the plain model, nothing rewritten)."""

    n_models = 1

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).unsqueeze(0)


def stack_models(models: list[nn.Module]) -> nn.Module:
    """One network computing all `models` at once: images B x 3 x H x W (one batch for all) or B x 3N x H x W
    (model n's batch in channels 3n..3n+2) -> logits N x B x classes.

    The models must share architecture and activations (they differ only in their weights). One model comes
    back as itself behind the same interface, so the single run's arithmetic is untouched.
    """
    if len(models) == 1:
        return Single(models[0])
    shapes = {tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()) for m in models}
    kinds = {tuple(type(m).__name__ for m in model.modules()) for model in models}
    if len(shapes) != 1 or len(kinds) != 1:
        raise ValueError("stack_models needs models of one architecture with the same activations")
    wide = copy.deepcopy(models[0])  # the template: its forward() and activations, its own tensors unused
    first_conv = True
    classifier = [name for name, module in wide.named_modules() if isinstance(module, nn.Linear)][-1]  # made last
    for name, module in list(wide.named_modules()):
        parts = [m.get_submodule(name) for m in models] if name else []
        if isinstance(module, nn.Conv2d):
            replacement = StackedConv(parts, first_layer=first_conv)
            first_conv = False
        elif isinstance(module, nn.BatchNorm2d):
            replacement = StackedBatchNorm(parts)
        elif isinstance(module, nn.Linear):
            replacement = StackedLinear(parts, classifier=name == classifier)
        else:
            continue
        replacement.train(module.training)  # new modules start in training mode; keep the models' mode
        parent_name, _, attribute = name.rpartition(".")
        setattr(wide.get_submodule(parent_name), attribute, replacement)
    wide.n_models = len(models)
    return wide
