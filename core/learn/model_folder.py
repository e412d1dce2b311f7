"""Load a verified ensemble folder and predict with onnxruntime.

An ensemble folder holds one ``.onnx`` file per member (and, for user-trained ensembles,
possibly a joblib retraining state). :meth:`Ensemble.load` refuses the folder unless

* every member's model card passes the schema (:func:`core.learn.card.read_card`);
* all members carry the same ensemble-level card and name each other consistently;
* every member's :func:`core.learn.onnx_export.model_sha256` equals the hash its card
  records — otherwise the file was modified after it was written;
* the folder holds exactly the member files the card lists.

ONNX files are parsed as protobuf (no code runs). Joblib files are unpickled only through
:func:`load_training_state`, and only when their SHA-256 equals the one recorded at write time.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import onnx

from .card import CardError, ensemble_part, read_card
from .features import MODEL_INPUTS, out_of_domain
from .onnx_export import INPUT_NAME, MEMBERS_NAME, OUTPUT_NAME, fuse_members, model_sha256


class EnsembleError(ValueError):
    """An ensemble folder that cannot be trusted or used (message names the file and the cause)."""


@dataclass
class EnsembleInfo:
    """What the UI lists about one ensemble folder."""

    name: str
    folder: str
    description: str = ""
    inputs: list[str] = field(default_factory=list)
    training_data: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    n_members: int = 0
    error: str = ""
    tier: dict = field(default_factory=dict)  # the card's optional feature tier {name, rank, layers}

    @property
    def valid(self) -> bool:
        return not self.error


def _verify_folder(folder: str) -> tuple[dict, list[tuple[dict, bytes]]]:
    """Ensemble card and ``(member card, model bytes)`` per member, all checks passed."""
    paths = sorted(glob.glob(os.path.join(folder, "*.onnx")))
    if not paths:
        raise EnsembleError(f"No .onnx member in {folder}")
    cards, blobs, common = [], [], None
    for p in paths:
        fname = os.path.basename(p)
        with open(p, "rb") as f:
            blob = f.read()
        try:
            model = onnx.load_from_string(blob)
        except Exception as e:  # noqa: BLE001 - any parse failure means "not a model"
            raise EnsembleError(f"{fname} is not a readable ONNX model: {e}") from None
        try:
            card = read_card(model)
        except CardError as e:
            raise EnsembleError(f"{fname}: model card refused: {e}") from None
        if card["member"]["file"] != fname:
            raise EnsembleError(f"{fname}: its card says it is {card['member']['file']!r} (file renamed?)")
        part = json.dumps(ensemble_part(card), sort_keys=True)
        if common is None:
            common = part
        elif part != common:
            raise EnsembleError(f"{fname}: its card differs from the other members' (mixed ensembles in {folder}?)")
        listed = {m["file"]: m for m in card["members"]}
        if fname not in listed:
            raise EnsembleError(f"{fname} is not a member listed by the ensemble card")
        if model_sha256(model) != listed[fname]["sha256"]:
            raise EnsembleError(f"{fname}: sha256 does not match its model card: "
                                "the file was modified after it was written")
        cards.append(card)
        blobs.append((card, blob))
    listed_files = {m["file"] for m in cards[0]["members"]}
    present = {os.path.basename(p) for p in paths}
    if listed_files != present:
        raise EnsembleError(f"{folder}: members missing {sorted(listed_files - present)}, "
                            f"unexpected {sorted(present - listed_files)}")
    return ensemble_part(cards[0]), blobs


#: onnxruntime intra-op threads of a loaded ensemble: 0 = one per core (``os.cpu_count()``). Its threads wait without
#: spinning, so they leave the cores to the block reader and the writers when idle (measured on
#: 2 cores, see README *Performance*).
INTRA_OP_THREADS = 0
#: Rows per onnxruntime call: bounds the members' intermediate tensors (a 32-16 Dense member holds
#: 48 floats per row) at no measurable cost against one call per 2^19-pixel block.
CHUNK_ROWS = 1 << 16


class Ensemble:
    """A loaded, verified ensemble. Use :meth:`load`.

    Attributes
    ----------
    folder : str
    card : dict
        The ensemble-level model card (without the per-member entry).
    member_cards : list of dict
        Each member's ``member`` entry, in member order.
    fused : bool
        True when the members run as one graph (:func:`core.learn.onnx_export.fuse_members`) in one
        session; False when each member has its own session (``fused=False`` at load, or members
        that are not row models or hold sub-graphs).
    """

    def __init__(self, folder: str, card: dict, member_cards: list[dict], sessions: list, chunk_rows: int,
                 fused: bool = False, intra_op_threads: int = 1) -> None:
        self.folder = folder
        self.intra_op_threads = int(intra_op_threads)
        self.card = card
        self.member_cards = member_cards
        self._sessions = sessions
        self.fused = bool(fused)
        self.chunk_rows = int(chunk_rows)
        self._domain = [inp["domain"] for inp in card["inputs"]]
        self._continuous = np.array([MODEL_INPUTS[inp["name"]].encoding != "one_hot" for inp in card["inputs"]])

    @classmethod
    def load(cls, folder: str, intra_op_threads: int = INTRA_OP_THREADS, chunk_rows: int = CHUNK_ROWS,
             fused: bool = True) -> "Ensemble":
        """Verify and open the ensemble in ``folder``.

        Parameters
        ----------
        folder : str
        intra_op_threads : int
            Threads of the onnxruntime session(s) (0 = one per core). Tree sums split over another
            number of threads round differently: a Dask worker loads the ensemble with the client's
            :attr:`intra_op_threads`.
        chunk_rows : int
            Rows per inference call in :meth:`predict` (bounds memory).
        fused : bool
            Run the verified members as one in-memory graph, one session, one call per chunk
            (the files are not changed); False: one session per member, called one after another.

        Raises
        ------
        EnsembleError
            Card off-schema, hash mismatch ("the file was modified after it was written"),
            inconsistent members, or a graph onnxruntime cannot open.
        """
        import onnxruntime as ort

        card, blobs = _verify_folder(folder)
        threads = int(intra_op_threads) or os.cpu_count() or 1
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions, mcards = [], []
        n_in = len(card["inputs"])
        for mcard, blob in blobs:
            try:
                sess = ort.InferenceSession(blob, sess_options=so, providers=["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001
                raise EnsembleError(f"{mcard['member']['file']}: onnxruntime cannot open it: {e}") from None
            inp = sess.get_inputs()[0]
            width = inp.shape[-1] if inp.shape else None
            if inp.name != INPUT_NAME or (isinstance(width, int) and width != n_in):
                raise EnsembleError(f"{mcard['member']['file']}: input {inp.name}{inp.shape} does not take "
                                    f"{n_in} features")
            sessions.append(sess)
            mcards.append(mcard["member"])
        if fused and len(blobs) > 1:
            try:
                graph = fuse_members([onnx.load_from_string(blob) for _, blob in blobs], name=card["name"])
            except ValueError:  # not row models, or sub-graphs: the members keep their own sessions
                return cls(folder, card, mcards, sessions, chunk_rows, intra_op_threads=threads)
            sessions = [ort.InferenceSession(graph.SerializeToString(), sess_options=so,
                                             providers=["CPUExecutionProvider"])]
            return cls(folder, card, mcards, sessions, chunk_rows, fused=True, intra_op_threads=threads)
        return cls(folder, card, mcards, sessions, chunk_rows, intra_op_threads=threads)

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def input_features(self) -> list[str]:
        """Feature names of the input columns, in order."""
        return [inp["name"] for inp in self.card["inputs"]]

    @property
    def n_members(self) -> int:
        return len(self.member_cards)

    def members(self, X: np.ndarray) -> np.ndarray:
        """Every member's estimate, ``(n_members, n)`` float32, for rows ``X`` (float32, C-contiguous)."""
        n = X.shape[0]
        outs = np.empty((self.n_members, n), dtype=np.float32)
        for a in range(0, n, self.chunk_rows):
            xb = X[a:a + self.chunk_rows]
            if self.fused:
                outs[:, a:a + xb.shape[0]] = self._sessions[0].run([MEMBERS_NAME], {INPUT_NAME: xb})[0].T
            else:
                for k, sess in enumerate(self._sessions):
                    outs[k, a:a + xb.shape[0]] = sess.run([OUTPUT_NAME], {INPUT_NAME: xb})[0].reshape(-1)
        return outs

    def check_inputs(self, X: np.ndarray, columns: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        """``(missing, out_of_domain)`` per row of ``X``, looking only at ``columns`` (a boolean mask over
        the inputs; all by default): a NaN continuous input, an input outside the training domain."""
        cols = np.ones(len(self._domain), bool) if columns is None else np.asarray(columns, bool)
        cont = self._continuous & cols
        n = X.shape[0]
        missing = ~np.all(np.isfinite(X[:, cont]), axis=1) if cont.any() else np.zeros(n, bool)
        picked = np.flatnonzero(cols)
        ood = out_of_domain(X[:, picked], [self._domain[j] for j in picked]) if picked.size else np.zeros(n, bool)
        return missing, ood

    def predict(self, X: np.ndarray, columns: Optional[np.ndarray] = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ensemble estimate for each row of raw inputs.

        Parameters
        ----------
        X : numpy.ndarray of float32, shape (n, n_inputs)
            Columns in :attr:`input_features` order, raw values in the card's units.
        columns : numpy.ndarray of bool, optional
            Inputs to check for NaN and the training domain (all by default). A caller that checked
            some columns once for many dates (:meth:`check_inputs`) leaves them out here.

        Returns
        -------
        mean : numpy.ndarray of float32, shape (n,)
            Mean of the members (m³/m³); NaN where a checked continuous input is NaN.
        std : numpy.ndarray of float32, shape (n,)
            Standard deviation of the members (ddof=0); NaN likewise.
        out_of_domain : numpy.ndarray of bool, shape (n,)
            True where a checked input lies outside the training range (or is an unseen/NaN class code).
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self._domain):
            raise ValueError(f"X must have shape (n, {len(self._domain)}) for inputs {self.input_features}, "
                             f"not {X.shape}")
        outs = self.members(X)
        mean = outs.mean(axis=0)
        std = outs.std(axis=0)
        bad, ood = self.check_inputs(X, columns)
        mean[bad] = np.nan
        std[bad] = np.nan
        return mean, std, ood


def load_training_state(folder: str) -> dict:
    """Unpickle the joblib retraining state of a verified ensemble, if its sha256 matches.

    The file is read only when the ensemble's cards (themselves verified) record it under
    ``artifacts`` and the SHA-256 of its bytes equals the recorded one; otherwise
    :class:`EnsembleError` is raised and nothing is unpickled.
    """
    import hashlib
    import io

    import joblib

    card, _ = _verify_folder(folder)
    recorded = [a for a in card["artifacts"] if a["file"].endswith(".joblib")]
    if not recorded:
        raise EnsembleError(f"{folder}: no joblib training state is recorded in its model card")
    art = recorded[0]
    path = os.path.join(folder, art["file"])
    if not os.path.isfile(path):
        raise EnsembleError(f"{art['file']} is recorded in the model card but missing from {folder}")
    with open(path, "rb") as f:
        blob = f.read()
    if hashlib.sha256(blob).hexdigest() != art["sha256"]:
        raise EnsembleError(f"{art['file']}: sha256 does not match the one recorded when it was written: "
                            "the file was modified after it was written; it is not loaded")
    return joblib.load(io.BytesIO(blob))


def list_ensembles(folders: Iterable[str]) -> list[EnsembleInfo]:
    """Ensembles found in ``folders`` (each folder itself, or its direct sub-folders), for the UI.

    Every folder holding ``.onnx`` files is verified (cards and hashes; no session is created).
    Folders that fail are listed too, with :attr:`EnsembleInfo.error` saying why.
    """
    out: list[EnsembleInfo] = []
    for root in folders:
        if not os.path.isdir(root):
            continue
        candidates = [root] if glob.glob(os.path.join(root, "*.onnx")) else sorted(
            os.path.join(root, d) for d in os.listdir(root)
            if os.path.isdir(os.path.join(root, d)) and glob.glob(os.path.join(root, d, "*.onnx")))
        for folder in candidates:
            try:
                card, blobs = _verify_folder(folder)
            except EnsembleError as e:
                out.append(EnsembleInfo(os.path.basename(os.path.normpath(folder)), folder, error=str(e)))
                continue
            out.append(EnsembleInfo(card["name"], folder, card["description"],
                                    [i["name"] for i in card["inputs"]], card["training_data"],
                                    card["scores"], len(blobs), tier=dict(card.get("tier") or {})))
    return out


def member_files(folder: str) -> list[str]:
    """The ``.onnx`` member files of a folder, sorted (no verification)."""
    return sorted(glob.glob(os.path.join(folder, "*.onnx")))


