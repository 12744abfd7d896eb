"""The word-level LSTM language model of "Fix your classifier", section "Language modelling".

A 2-layer LSTM (embedding and hidden size 512 in the paper) over a vocabulary of V words, with
five output layers ("variants"):

| variant | input embedding (V x E) | output layer (H -> V) |
|---|---|---|
| `learned` | learned | learned `nn.Linear` (V x H weight + bias) |
| `tied` | learned | the embedding matrix itself (one shared tensor) + learned bias |
| `fixed` | learned | `FixedClassifier`: alpha Q^T h/‖h‖ + b, Q a fixed random orthonormal frame |
| `hadamard` | learned | `HadamardClassifier`: Q the truncated Hadamard matrix (never stored) |
| `pmi` | fixed PMI embeddings | the same fixed PMI matrix (one shared, frozen tensor) + bias |

`pmi` is the paper's "fixed pre-trained embeddings": word vectors from a factorisation of the
training split's shifted positive PMI matrix (Levy & Goldberg 2014), frozen and used on both
sides, which is how the paper's count of "89% fewer parameters" comes about (input embedding
and classifier both fixed: about 34 of 38 million parameters). `fixed` and `hadamard` fix only
the classifier, as the paper does for images; their input embedding stays learned.

Initialisation as in PyTorch's word_language_model example: embedding and learned output
weights uniform in [-0.1, 0.1], output bias 0, LSTM weights torch's default.

For V = 33,278 (WikiText-2), E = H = 512, 2 layers: the LSTM has 4,202,496 parameters, each of
the two V x 512 matrices 17,038,336, the learned model 38,312,446, of which 34,109,950 (89.0%)
are the embedding and the classifier (`parameter_breakdown`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.fixed_classifier.layers import FixedClassifier, HadamardClassifier

VARIANTS = ("learned", "tied", "fixed", "hadamard", "pmi")
SHARED_MATRIX = ("tied", "pmi")  # variants whose output weight is the input embedding
INIT_RANGE = 0.1

Hidden = tuple[Tensor, Tensor]  # (h, c), each (layers, B, H)


# ---------------------------------------------------------------- PMI embeddings


def cooccurrences(stream: np.ndarray, vocab_size: int, window: int) -> scipy.sparse.csr_matrix:
    """Symmetric (V, V) counts of word pairs at most `window` tokens apart in `stream`."""
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    stream = np.asarray(stream, dtype=np.int64)
    rows, cols = [], []
    for distance in range(1, window + 1):
        left, right = stream[:-distance], stream[distance:]
        rows += [left, right]
        cols += [right, left]
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    counts = scipy.sparse.coo_matrix(
        (np.ones(len(rows_all)), (rows_all, cols_all)), shape=(vocab_size, vocab_size))
    return counts.tocsr()  # duplicates are summed


def shifted_ppmi(counts: scipy.sparse.csr_matrix, shift: float = 1.0,
                 context_smoothing: float = 0.75) -> scipy.sparse.csr_matrix:
    """max(PMI(w, c) - log k, 0) on the non-zero counts (Levy & Goldberg 2014, with k = `shift`).

    PMI(w, c) = log(#(w,c) D / (#w #c)) with the context counts raised to `context_smoothing`
    (word2vec's 0.75) and renormalised, D the number of pairs. k = 1 (plain PPMI) is the shift
    with which Levy & Goldberg's SVD factorisation did best.
    """
    counts = counts.tocsr().astype(np.float64)
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    context = np.asarray(counts.sum(axis=0)).ravel() ** context_smoothing
    context_probability = context / context.sum()
    coo = counts.tocoo()
    # log [ (#(w,c) / D) / ((#w / D) P(c)) ]
    pmi = np.log(coo.data) - np.log(word_totals[coo.row]) - np.log(context_probability[coo.col])
    values = np.maximum(pmi - np.log(shift), 0.0)
    matrix = scipy.sparse.csr_matrix((values, (coo.row, coo.col)), shape=counts.shape)
    matrix.eliminate_zeros()
    return matrix


def pmi_embeddings(stream: np.ndarray, vocab_size: int, dim: int, window: int = 2,
                   shift: float = 1.0, seed: int = 0) -> np.ndarray:
    """(V, dim) word vectors U_d sqrt(S_d) of the truncated SVD of the shifted PPMI matrix.

    Computed from the training stream only, so nothing is downloaded. scipy's sparse `svds`
    (ARPACK, seeded start vector) when dim < V - 1, a dense SVD otherwise (tiny vocabularies);
    columns beyond the rank are zero. Signs are fixed (largest entry of each column positive)
    and the matrix is scaled so that the average word vector has norm 1, about the norm of the
    learned embeddings' uniform(-0.1, 0.1) start for E = 512.
    """
    if dim < 1:
        raise ValueError(f"dim must be positive, not {dim}")
    matrix = shifted_ppmi(cooccurrences(stream, vocab_size, window), shift)
    if matrix.nnz == 0:
        raise ValueError(f"no word pair has PMI above log({shift}): the stream is too short or "
                         "too uniform; lower the shift or use a longer training stream")
    rank = min(dim, vocab_size)
    if rank < vocab_size - 1:
        start = np.random.default_rng(seed).standard_normal(vocab_size)
        u, s, _ = scipy.sparse.linalg.svds(matrix, k=rank, v0=start)
    else:
        u, s, _ = np.linalg.svd(matrix.toarray())
    order = np.argsort(s)[::-1][:rank]
    vectors = u[:, order] * np.sqrt(s[order])
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(rank)])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    out = np.zeros((vocab_size, dim))
    out[:, :rank] = vectors
    norms = np.linalg.norm(out, axis=1)
    mean_norm = norms[norms > 0].mean() if (norms > 0).any() else 1.0
    return (out / mean_norm).astype(np.float32)


# ---------------------------------------------------------------- the model


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> LSTM -> dropout -> output layer of `variant`.

    Shapes: tokens (L, B) int64 -> logits (L, B, V), with the (h, c) state carried between calls.
    `embeddings` (V, E) are required by `pmi` (see `pmi_embeddings`) and refused otherwise;
    `seed` draws the fixed classifier's Q (its private generator; the global RNG is untouched).
    """

    def __init__(self, vocab_size: int, variant: str = "learned", embedding_size: int = 512,
                 hidden_size: int = 512, layers: int = 2, dropout: float = 0.5,
                 embeddings: Tensor | np.ndarray | None = None, seed: int = 0) -> None:
        super().__init__()
        check_architecture(variant, vocab_size, embedding_size, hidden_size, layers, dropout)
        if (embeddings is not None) != (variant == "pmi"):
            raise ValueError("embeddings are needed by the 'pmi' variant and only by it")
        self.variant = variant
        self.vocab_size = vocab_size
        self.drop = nn.Dropout(dropout)
        # _weight skips nn.Embedding's normal_ init, overwritten below anyway (and slow on meta)
        self.encoder = nn.Embedding(vocab_size, embedding_size,
                                    _weight=torch.empty(vocab_size, embedding_size))
        self.lstm = nn.LSTM(embedding_size, hidden_size, layers,
                            dropout=dropout if layers > 1 else 0.0)
        nn.init.uniform_(self.encoder.weight, -INIT_RANGE, INIT_RANGE)
        if variant == "fixed":
            self.decoder: nn.Module = FixedClassifier(hidden_size, vocab_size, seed=seed)
        elif variant == "hadamard":
            self.decoder = HadamardClassifier(hidden_size, vocab_size)
        else:
            self.decoder = nn.Linear(hidden_size, vocab_size)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -INIT_RANGE, INIT_RANGE)
        if variant == "pmi":
            matrix = (embeddings if isinstance(embeddings, Tensor)
                      else torch.as_tensor(np.asarray(embeddings))).to(torch.float32)
            if tuple(matrix.shape) != (vocab_size, embedding_size):
                raise ValueError(f"embeddings must be ({vocab_size}, {embedding_size}), "
                                 f"not {tuple(matrix.shape)}")
            self.encoder.weight = nn.Parameter(matrix.clone(), requires_grad=False)
        if variant in SHARED_MATRIX:
            self.decoder.weight = self.encoder.weight  # one tensor, (V, E) = (V, H)

    def init_hidden(self, batch_size: int) -> Hidden:
        weight = self.encoder.weight
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return (weight.new_zeros(shape), weight.new_zeros(shape))

    def forward(self, tokens: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        embedded = self.drop(self.encoder(tokens))  # (L, B, E)
        output, hidden = self.lstm(embedded, hidden)  # (L, B, H)
        return self.decoder(self.drop(output)), hidden  # (L, B, V)


def check_architecture(variant: str, vocab_size: int, embedding_size: int, hidden_size: int,
                       layers: int, dropout: float) -> None:
    """Raise ValueError, saying what to change, for an impossible model."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    for name, value in (("vocab_size", vocab_size), ("embedding_size", embedding_size),
                        ("hidden_size", hidden_size), ("layers", layers)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), not {dropout!r}")
    if variant in SHARED_MATRIX and embedding_size != hidden_size:
        raise ValueError(f"the {variant!r} variant uses the embedding as output weight: it needs "
                         f"embedding_size == hidden_size, not {embedding_size} and {hidden_size}")


def parameter_breakdown(model: LSTMLanguageModel) -> dict[str, int]:
    """Trainable parameters of the embedding, the LSTM and the classifier, and fixed numbers.

    A tensor shared by embedding and classifier (tied) is counted once, under "embedding";
    "fixed" counts frozen parameters and buffers (the fixed Q, alpha when fixed, frozen PMI).
    """
    def trainable(module: nn.Module, seen: set[int]) -> int:
        total = 0
        for parameter in module.parameters():
            if parameter.requires_grad and id(parameter) not in seen:
                seen.add(id(parameter))
                total += parameter.numel()
        return total

    seen: set[int] = set()
    counts = {"embedding": trainable(model.encoder, seen), "lstm": trainable(model.lstm, seen),
              "classifier": trainable(model.decoder, seen)}
    frozen = {id(p): p.numel() for p in model.parameters() if not p.requires_grad}
    counts["fixed"] = sum(frozen.values()) + sum(b.numel() for b in model.buffers())
    counts["trainable"] = counts["embedding"] + counts["lstm"] + counts["classifier"]
    return counts


def parameter_table(vocab_size: int, embedding_size: int = 512, hidden_size: int = 512,
                    layers: int = 2) -> dict[str, dict[str, int]]:
    """`parameter_breakdown` of every variant at full size, built on the meta device (no memory)."""
    table = {}
    with torch.device("meta"):
        for variant in VARIANTS:
            embeddings = torch.empty(vocab_size, embedding_size) if variant == "pmi" else None
            model = LSTMLanguageModel(vocab_size, variant, embedding_size, hidden_size, layers,
                                      embeddings=embeddings)
            table[variant] = parameter_breakdown(model)
    return table


def token_losses(logits: Tensor, targets: Tensor) -> Tensor:
    """Summed cross-entropy of (L, B, V) logits against (L, B) targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           reduction="sum")
