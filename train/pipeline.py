"""The training workspace (so-vits-svc's folder layout) and the stages run in order.

    <work>/dataset_raw/<speaker>/*     recordings (input)
    <work>/dataset/<rate>k/<speaker>/  prepared clips + cached features
    <work>/filelists/{train,val}.txt   the split
    <work>/configs/config.json         so-vits-svc config
    <work>/logs/<rate>k/               G_*.pth, D_*.pth, config.json, TensorBoard logs,
                                       kmeans_10000.npz, feature_index.npz, release_G_*.pth
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtsvc.errors import RtsvcError

from .dataset_config import read_config_json


@dataclass(frozen=True)
class Workspace:
    root: Path
    sample_rate: int = 44100

    @property
    def raw(self) -> Path:
        return self.root / "dataset_raw"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset" / f"{self.sample_rate // 1000}k"

    @property
    def config(self) -> Path:
        return self.root / "configs" / "config.json"

    @property
    def model_dir(self) -> Path:
        return self.root / "logs" / f"{self.sample_rate // 1000}k"

    @property
    def cluster_file(self) -> Path:
        return self.model_dir / "kmeans_10000.npz"

    @property
    def index_file(self) -> Path:
        return self.model_dir / "feature_index.npz"


def newest_generator(model_dir: Path) -> Path:
    """The newest complete G_<step>.pth in ``model_dir``."""
    from .checkpoints import list_pairs

    pairs = list_pairs(model_dir)
    if not pairs:
        raise RtsvcError(f"{model_dir}: holds no G_<step>.pth checkpoints.", "run 'rtsvc train fit' first.")
    return pairs[-1].generator


def run_features(config_path: Path, f0_method: str, f0_threshold: float, workers: int, device: str,
                 pretrain_dir: Path | None, encoder_factory: Callable[[], object] | None = None,
                 log: Callable[[str], None] = print) -> dict[Path, str]:
    """Extract features for every clip of the config's train and val lists."""
    from rtsvc.sovits_config import parse_sovits_config

    from .data import read_filelist
    from .features import FeatureSettings, default_encoder_factory, extract_all

    raw = read_config_json(config_path)
    cfg = parse_sovits_config(raw, str(config_path))
    settings = FeatureSettings(
        sampling_rate=cfg.data.sampling_rate, hop_length=cfg.data.hop_length, filter_length=cfg.data.filter_length,
        win_length=cfg.data.win_length, vol_embedding=cfg.model.vol_embedding, ssl_dim=cfg.model.ssl_dim,
        f0_method=f0_method, f0_threshold=f0_threshold, device=device,
    )
    clips = read_filelist(Path(raw["data"]["training_files"])) + read_filelist(Path(raw["data"]["validation_files"]))
    clips = list(dict.fromkeys(clips))
    factory = encoder_factory or default_encoder_factory(cfg.speech_encoder, pretrain_dir, device)
    failures = extract_all(clips, settings, factory, workers=workers, log=log)
    if failures:
        log(f"features: {len(failures)} clip(s) failed; remove them or fix them and rerun (the others are ready)")
    return failures
