"""The study's networks: shapes, variants, and the losses' known values."""

from __future__ import annotations

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.models import MODELS, ModelOptions, get_model
from vaebench.models.architecture import architecture_for
from vaebench.models.vae import gaussian_kl
from vaebench.models.vsc import spike_and_slab_kl

N_GENES = 40


@pytest.mark.parametrize("name", ["ae", "beta_vae", "beta_vsc"])
@pytest.mark.parametrize("variant", ["text", "code"])
def test_every_network_encodes_to_the_latent_size_and_has_a_finite_loss(name: str, variant: str) -> None:
    torch.manual_seed(0)
    model = get_model(name).build(N_GENES, ModelOptions(latent_dim=6, variant=variant))
    x = torch.randn(10, N_GENES)
    assert model.encode(x).shape == (10, 6)
    assert model(x).shape == (10, 6)  # a saved model serves latent codes
    loss = model.loss(x)
    assert loss.total.ndim == 0 and torch.isfinite(loss.total)
    loss.total.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("ae", ["reconstruction"]),
        ("beta_vae", ["reconstruction", "beta_kl"]),
        ("beta_vsc", ["reconstruction", "beta_kl"]),
    ],
)
def test_the_loss_is_the_sum_of_its_named_parts_and_the_kl_part_scales_with_beta(
    name: str, parts: list[str]
) -> None:
    x = torch.randn(10, N_GENES)
    by_beta = {}
    for beta in (1.0, 4.0):
        torch.manual_seed(0)
        model = get_model(name).build(N_GENES, ModelOptions(latent_dim=6, beta=beta))
        terms = model.loss(x)
        assert list(terms.parts) == parts
        assert all(part.ndim == 0 and torch.isfinite(part) for part in terms.parts.values())
        # bit-identical: the total is the parts added in their order
        assert torch.equal(terms.total, sum(terms.parts.values(), torch.zeros(())))
        by_beta[beta] = terms.parts
    if "beta_kl" in parts:
        # Same weights and draws: the reconstruction is unchanged and the KL part is beta times the KL.
        assert torch.equal(by_beta[1.0]["reconstruction"], by_beta[4.0]["reconstruction"])
        assert torch.allclose(by_beta[4.0]["beta_kl"], 4 * by_beta[1.0]["beta_kl"])
        assert by_beta[1.0]["beta_kl"] > 0


def test_text_variant_follows_section_2_4_and_code_variant_the_published_code() -> None:
    text = get_model("beta_vae").build(13714, ModelOptions())
    widths = [m.out_features for m in text.trunk if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 32]
    code = get_model("beta_vae").build(13714, ModelOptions(variant="code"))
    widths = [m.out_features for m in code.trunk if isinstance(m, torch.nn.Linear)]
    assert widths == [800, 400]
    decoder = [m.out_features for m in code.decoder if isinstance(m, torch.nn.Linear)]
    assert decoder == [80, 400, 800, 13714]


def test_text_autoencoder_has_a_relu_on_its_code_and_the_code_variant_does_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, N_GENES)
    text = get_model("ae").build(N_GENES, ModelOptions(variant="text"))
    code = get_model("ae").build(N_GENES, ModelOptions(variant="code"))
    assert (text.encode(x) >= 0).all()
    assert (code.encode(x) < 0).any()


def test_hidden_widths_override_the_trunk_and_the_decoder_mirrors_it() -> None:
    arch = architecture_for("ae", "text", (64, 8))
    assert arch.trunk == (64, 8)
    assert arch.decoder == (16, 8, 64)
    with pytest.raises(VaebenchError, match="positive"):
        architecture_for("ae", "text", (0, 8))


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    zeros = torch.zeros(3, 6)
    assert torch.allclose(gaussian_kl(zeros, zeros), torch.zeros(3))
    assert (gaussian_kl(torch.ones(3, 6), zeros) > 0).all()
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension.
    assert torch.allclose(gaussian_kl(torch.ones(1, 6), torch.zeros(1, 6)), torch.tensor([3.0]))


def test_spike_and_slab_kl_is_zero_when_the_posterior_is_the_prior() -> None:
    zeros = torch.zeros(2, 6)
    alpha = 0.5
    assert torch.allclose(
        spike_and_slab_kl(zeros, zeros, torch.full((2, 6), alpha), alpha), torch.zeros(2), atol=1e-6
    )
    assert (spike_and_slab_kl(zeros, zeros, torch.full((2, 6), 0.9), alpha) > 0).all()


def test_vsc_spike_probability_stays_a_probability() -> None:
    torch.manual_seed(0)
    model = get_model("beta_vsc").build(N_GENES, ModelOptions())
    _, _, gamma = model.posterior(torch.randn(50, N_GENES) * 10)
    assert ((gamma > 0) & (gamma <= 1)).all()


def test_registry_names_are_the_cli_vocabulary_and_unknown_names_list_them() -> None:
    assert {"ae", "beta_vae", "beta_vsc", "pca"} <= set(MODELS)
    assert not get_model("pca").is_torch
    assert get_model("beta_vsc").has_beta and not get_model("ae").has_beta
    with pytest.raises(VaebenchError, match=r"Unknown model 'vae'; known models are: ") as refused:
        get_model("vae")
    # every built-in is named, in order; models of one's own that other tests resolved in this process, and
    # entry points of installed packages, may stand among them
    listed = str(refused.value).split("known models are: ")[1].split(". ")[0].split(", ")
    builtins = ["ae", "beta_vae", "beta_vsc", "flow_vae", "nb_vae", "pca", "pca50", "random"]
    assert [name for name in listed if name in builtins] == builtins
