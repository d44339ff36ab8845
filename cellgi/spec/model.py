"""The ``model:`` section: the lazy Dango model assembled from registered components."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cellgi.spec.base import StrictModel, component

__all__ = ["ConvWrapperSpec", "EmbeddingSpec", "ModelSpec", "PreprocessorSpec"]

Norm = Literal["layer", "rms", "none"]


class EmbeddingSpec(StrictModel):
    """The gene input = optional learnable ID embedding + the run's per-gene features (``data.features``)."""

    learnable: bool = Field(
        True,
        description="a learnable ID vector per gene (hidden_dim wide, or dim); false: the features alone",
    )
    dim: int | None = Field(None, ge=0, description="width of the learnable ID vector (default hidden_dim; 0 = none)")
    init_std: float = Field(0.1, gt=0, description="std of the normal init of the gene embedding")
    gene_dropout: float = Field(
        0.0, ge=0, lt=1,
        description="training: probability that a gene's ID vector is replaced by the shared 'unknown' vector "
        "(genes without training samples always use it)",
    )
    use_features: bool = Field(True, description="feed data.features (when the data has them) into the model")

    def id_dim(self, hidden_dim: int) -> int:
        if not self.learnable:
            return 0
        return hidden_dim if self.dim is None else self.dim


class PreprocessorSpec(StrictModel):
    num_layers: int = Field(2, ge=0, description="MLP depth applied to each gene's embedding")
    norm: Norm = Field("layer", description="per-node norm (never mixes genes or samples)")
    activation: str = Field("gelu", description="any PyG activation resolver name")
    dropout: float = Field(0.0, ge=0, lt=1)


class ConvWrapperSpec(StrictModel):
    projection: bool = Field(False, description="linear projection after the conv")
    norm: Norm = "layer"
    activation: str = "gelu"
    dropout: float = Field(0.0, ge=0, lt=1)
    residual: bool = True


class ModelSpec(StrictModel):
    hidden_dim: int = Field(64, ge=1)
    num_layers: int = Field(3, ge=1)
    edge_types: list[str] | None = Field(None, description="subset of the data's graphs to use (default all)")
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec)
    preprocessor: PreprocessorSpec = Field(default_factory=PreprocessorSpec)
    conv: component("conv") = Field(default_factory=lambda: {"type": "masked_gin"})  # type: ignore[valid-type]
    conv_wrapper: ConvWrapperSpec = Field(default_factory=ConvWrapperSpec)
    aggregator: component("aggregator") = Field(default_factory=lambda: {"type": "sum"})  # type: ignore[valid-type]
    pooling: component("pooling") = Field(default_factory=lambda: {"type": "attentional"})  # type: ignore[valid-type]
    global_predictor: component("global_predictor") = Field(  # type: ignore[valid-type]
        default_factory=lambda: {"type": "mlp"}
    )
    local_predictor: component("local_predictor") | None = Field(  # type: ignore[valid-type]
        default_factory=lambda: {"type": "hypergraph_attention"},
        description="null disables the local head (then use combiner global_only)",
    )
    combiner: component("combiner") = Field(default_factory=lambda: {"type": "gate"})  # type: ignore[valid-type]
    additive_term: component("additive_term") | None = Field(  # type: ignore[valid-type]
        None,
        description="per-gene additive part: prediction = additive(genes) + scale * interaction, scale from 0",
    )
    check_finite: bool = Field(True, description="raise, naming the stage, on NaN/inf activations")
    first_layer_delta: bool = Field(
        True,
        description="run the first layer once for the wildtype and again only where a deleted gene's edges "
        "change a gene's input (exact; used when the conv supports it and no dropout acts in that layer)",
    )
