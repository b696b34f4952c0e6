"""The SGR / SAF model family of SGRAF (AAAI 2021) as the released DAA checkpoints store it.

Parameter names mirror the published state dicts exactly (`fc`, `cap_rnn`, `v_global_w`,
`SGR_module.0.graph_query_w`, ...), so `load_state_dict` needs no renaming. The parts that
are per image or per caption live here; the per-pair scoring lives in `bench.model.engine`
(batched) and `bench.model.reference_loop` (the original's per-caption loop).
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bench.model.config import ModelConfig

EPS = 1e-8
ATTENTION_SMOOTH = 9.0  # SCAN's softmax temperature lambda in the text-to-image attention
SA_DROPOUT = 0.4  # SGRAF's fixed dropout in the self-attention blocks and word embedding


def l2norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """x / (||x|| + 1e-8): the eps is added to the norm, as in SCAN and SGRAF."""
    return x / (torch.linalg.vector_norm(x, dim=dim, keepdim=True) + EPS)


def l2norm_(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """l2norm in place, for evaluation (no gradient): one pass fewer over the big tensors."""
    return x.div_(torch.linalg.vector_norm(x, dim=dim, keepdim=True).add_(EPS))


def l1norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return x / (x.abs().sum(dim=dim, keepdim=True) + EPS)


class ImageEncoder(nn.Module):
    """Region features (B, R, D_img) -> l2-normalised region embeddings (B, R, E)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(config.img_dim, config.embed_size)
        self.normalise = not config.no_imgnorm

    def forward(self, regions: torch.Tensor) -> torch.Tensor:
        emb = self.fc(regions)
        return l2norm(emb) if self.normalise else emb


class TextEncoder(nn.Module):
    """Token ids (B, L) with true lengths -> word embeddings (B, L, E), bi-GRU halves averaged."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.word_dim)
        self.dropout = nn.Dropout(SA_DROPOUT)
        self.cap_rnn = nn.GRU(
            config.word_dim, config.embed_size, config.num_layers,
            batch_first=True, bidirectional=config.bi_gru,
        )
        self.embed_size = config.embed_size
        self.bidirectional = config.bi_gru
        self.normalise = not config.no_txtnorm

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        words = self.dropout(self.embed(tokens))
        packed = pack_padded_sequence(words, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.cap_rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        if self.bidirectional:
            out = (out[..., : self.embed_size] + out[..., self.embed_size :]) / 2
        return l2norm(out) if self.normalise else out


def _weighted_global(local_emb, global_emb, common, inputs, dim_items):
    """Softmax-weighted sum of `inputs` over items, weights from local x global features."""
    weights = common(local_emb * global_emb.unsqueeze(dim_items)).squeeze(-1)
    weights = torch.softmax(weights, dim=-1)
    return l2norm((weights.unsqueeze(-1) * inputs).sum(dim=dim_items))


class VisualSA(nn.Module):
    """Global image vector: region self-attention; BatchNorm1d(R) treats regions as channels."""

    def __init__(self, embed_size: int, num_regions: int):
        super().__init__()
        self.embedding_local = nn.Sequential(
            nn.Linear(embed_size, embed_size), nn.BatchNorm1d(num_regions), nn.Tanh(), nn.Dropout(SA_DROPOUT)
        )
        self.embedding_global = nn.Sequential(
            nn.Linear(embed_size, embed_size), nn.BatchNorm1d(embed_size), nn.Tanh(), nn.Dropout(SA_DROPOUT)
        )
        self.embedding_common = nn.Sequential(nn.Linear(embed_size, 1))

    def forward(self, regions: torch.Tensor) -> torch.Tensor:
        local = self.embedding_local(regions)
        glob = self.embedding_global(regions.mean(dim=1))
        return _weighted_global(local, glob, self.embedding_common, regions, dim_items=1)


class TextSA(nn.Module):
    """Global caption vector over words; callers pass captions of one length (no padding)."""

    def __init__(self, embed_size: int):
        super().__init__()
        self.embedding_local = nn.Sequential(nn.Linear(embed_size, embed_size), nn.Tanh(), nn.Dropout(SA_DROPOUT))
        self.embedding_global = nn.Sequential(nn.Linear(embed_size, embed_size), nn.Tanh(), nn.Dropout(SA_DROPOUT))
        self.embedding_common = nn.Sequential(nn.Linear(embed_size, 1))

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        local = self.embedding_local(words)
        glob = self.embedding_global(words.mean(dim=-2))
        return _weighted_global(local, glob, self.embedding_common, words, dim_items=-2)


class GraphReasoning(nn.Module):
    """One SGR step over alignment nodes X (..., n+1, S)."""

    def __init__(self, sim_dim: int):
        super().__init__()
        self.graph_query_w = nn.Linear(sim_dim, sim_dim)
        self.graph_key_w = nn.Linear(sim_dim, sim_dim)
        self.sim_graph_w = nn.Linear(sim_dim, sim_dim)

    def folded_query_key(self, key_bias: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's constants: ([W_q^T W_k | W_g^T], [W_k^T b_q | 0]), S x 2S and 2S.

        The left half folds the query and key Linears: (W_q q_i + b_q) . (W_k x_j + b_k) =
        q_i^T (W_q^T W_k) x_j + (W_k^T b_q) . x_j + terms constant in j, which cancel in the softmax
        over j. The right half is the update Linear W_g moved before the edge product: the softmax's
        rows sum to 1, so W_g (sum_j e_ij x_j) + b_g = sum_j e_ij (W_g x_j) + b_g. Both halves apply to
        the same nodes, so one S x 2S product replaces three S x S ones; equal up to float rounding.
        The engine computes it once per call, not per caption chunk: a model constant in evaluation,
        differentiable in training (the gradients of W_q, W_k and W_g flow through the fold).

        `key_bias` (training) appends one column, W_q^T b_k with shift b_q . b_k: the product then also
        gives a term the fold drops, (W_q q_i + b_q) . b_k, which is constant over the keys, so the
        softmax cancels it, but through it the key bias keeps the (numerically zero) gradient it has
        in the original, and Adam treats it the same way.
        """
        query, key, update = self.graph_query_w, self.graph_key_w, self.sim_graph_w
        columns = [query.weight.T @ key.weight, update.weight.T]
        shifts = [key.weight.T @ query.bias, torch.zeros_like(update.bias)]
        if key_bias:
            columns.append((query.weight.T @ key.bias).unsqueeze(1))
            shifts.append((query.bias @ key.bias).view(1))
        return torch.cat(columns, dim=1), torch.cat(shifts)

    def forward(self, nodes: torch.Tensor, fold=None, first_only: bool = False) -> torch.Tensor:
        """Updated nodes; with `first_only`, just the global node's row (..., 1, S): all that the
        last step's output is read for, at a fraction of the cost. That row feeds the score head
        directly, so under bf16 autocast it is computed in float32 (one row of n+1: cheap).
        `fold` (folded_query_key()) takes the folded path."""
        if first_only:
            with torch.autocast(device_type=nodes.device.type, enabled=False):
                nodes = nodes.to(torch.promote_types(nodes.dtype, torch.float32))
                if fold is None:
                    return self._update(nodes, nodes[..., :1, :])
                return self._update_first_folded(nodes, *(part.to(nodes.dtype) for part in fold))
        if fold is None:
            return self._update(nodes, nodes)
        return self._update_folded(nodes, *fold)

    def _update(self, nodes: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """The original's step: query and key Linears, softmax over nodes, update Linear, ReLU."""
        logits = self.graph_query_w(queries) @ self.graph_key_w(nodes).transpose(-1, -2)
        return torch.relu(self.sim_graph_w(torch.softmax(logits, dim=-1) @ nodes))

    def _update_folded(self, nodes: torch.Tensor, weights: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Every node's update through one product with the fold (folded_query_key)."""
        sim = nodes.shape[-1]
        flat = nodes.reshape(-1, nodes.shape[-2], sim)
        products = torch.addmm(shift, flat.reshape(-1, sim), weights).view(*flat.shape[:-1], weights.shape[1])
        # split, not sliced: its backward is one cat, not a zero-fill per part
        queries, values, *key_bias = products.split(sim, dim=-1)
        keys = flat.transpose(1, 2)
        logits = torch.baddbmm(key_bias[0], queries, keys) if key_bias else torch.bmm(queries, keys)
        # the bias inside the product and ReLU in place before the view: in place on a view, autograd
        # would copy the whole gradient in the backward (CopySlices)
        bias = self.sim_graph_w.bias.to(values.dtype)
        return torch.baddbmm(bias, torch.softmax(logits, dim=-1), values).relu_().view(nodes.shape)

    def _update_first_folded(self, nodes: torch.Tensor, weights: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The global node's update alone, with the folded query-key half of `weights`."""
        sim = nodes.shape[-1]
        first = nodes[..., :1, :]  # one slice for both uses: its backward writes a full-size gradient once
        rows = first.reshape(-1, sim)
        logits = torch.addmm(shift[:sim], rows, weights[:, :sim]).view(first.shape) @ nodes.transpose(-1, -2)
        if weights.shape[1] > 2 * sim:  # training's key-bias column
            logits = logits + torch.addmm(shift[2 * sim:], rows, weights[:, 2 * sim:]).view(*first.shape[:-1], 1)
        return torch.relu(self.sim_graph_w(torch.softmax(logits, dim=-1) @ nodes))


class AttentionFiltration(nn.Module):
    """SAF: sigmoid(BN(Linear(X))) weights, l1-normalised, pool the nodes."""

    def __init__(self, sim_dim: int):
        super().__init__()
        self.attn_sim_w = nn.Linear(sim_dim, 1)
        self.bn = nn.BatchNorm1d(1)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        """Pool nodes (..., n+1, S) -> (..., S), the batch norm on the logits of each pair's nodes."""
        logits = self.logits(nodes)
        return self.pool(nodes, self.bn(logits.reshape(-1, 1, logits.shape[-1])).reshape(logits.shape))

    def logits(self, nodes: torch.Tensor) -> torch.Tensor:
        """(..., n+1): one logit per node, before the batch norm."""
        return self.attn_sim_w(nodes).squeeze(-1)

    def pool(self, nodes: torch.Tensor, normed: torch.Tensor) -> torch.Tensor:
        """The nodes' weighted sum, weights the l1-normalised sigmoids of the batch-normed logits."""
        weights = l1norm(torch.sigmoid(normed))
        return l2norm((weights.unsqueeze(-1) * nodes).sum(dim=-2))


class SimilarityEncoder(nn.Module):
    """Holds every weight of the per-pair similarity; the scoring itself is in bench.model.engine."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        embed, sim = config.embed_size, config.sim_dim
        self.module_name = config.module_name
        self.v_global_w = VisualSA(embed, config.num_regions)
        self.t_global_w = TextSA(embed)
        self.sim_tranloc_w = nn.Linear(embed, sim)
        self.sim_tranglo_w = nn.Linear(embed, sim)
        self.sim_eval_w = nn.Linear(sim, 1)
        if config.module_name == "SGR":
            self.SGR_module = nn.ModuleList(GraphReasoning(sim) for _ in range(config.sgr_step))
        else:
            self.SAF_module = AttentionFiltration(sim)

    def reduce_nodes(self, nodes: torch.Tensor, folds: list | None = None, last_first_only: bool = False):
        """Alignment nodes (..., n+1, S) -> one similarity vector (..., S).

        `folds` (one GraphReasoning.folded_query_key() per SGR step) replaces each step's query and
        key Linears by their folded product. The original updates every node in every SGR step, then
        reads the global node; `last_first_only` computes only that row in the last step (the same value).
        """
        if self.module_name == "SGR":
            last = len(self.SGR_module) - 1
            for index, step in enumerate(self.SGR_module):
                fold = None if folds is None else folds[index]
                nodes = step(nodes, fold, first_only=last_first_only and index == last)
            return nodes[..., 0, :]
        return self.SAF_module(nodes)

    def folded_query_keys(self) -> list | None:
        """Each SGR step's folded query-key product (None for SAF); with the key-bias column in training."""
        if self.module_name != "SGR":
            return None
        return [step.folded_query_key(key_bias=torch.is_grad_enabled()) for step in self.SGR_module]

    def score_vector(self, vec: torch.Tensor) -> torch.Tensor:
        """The score head in float32 (float64 in fp64 runs) whatever the precision: a bf16 score has
        8 significant bits, so distinct pairs would tie on its grid and the ranking would change.
        Written as a product and a sum rather than a matmul, so TF32 tensor cores cannot round it
        either; it is one S-vector dot product per pair, a negligible share of the work."""
        with torch.autocast(device_type=vec.device.type, enabled=False):
            head = self.sim_eval_w
            return torch.sigmoid((vec.to(head.weight.dtype) * head.weight[0]).sum(-1) + head.bias[0])


class SimilarityModel(nn.Module):
    """Image encoder, text encoder and similarity encoder, in the checkpoint's order."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.img_enc = ImageEncoder(config)
        self.txt_enc = TextEncoder(config)
        self.sim_enc = SimilarityEncoder(config)

    def parts(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return self.img_enc, self.txt_enc, self.sim_enc


def init_weights(model: SimilarityModel) -> None:
    """SGRAF's initialisation: Xavier-uniform Linears with zero bias, U(-0.1, 0.1) words, BN 1/0."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    nn.init.uniform_(model.txt_enc.embed.weight, -0.1, 0.1)
