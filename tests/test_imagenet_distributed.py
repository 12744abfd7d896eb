"""ImageNet-format folders and data-parallel training under torchrun (gloo, two CPU processes).

The training runs use the generated image folder and ResNet-20 at 32 x 32 (a Table 1 network
would take minutes on a CPU); the code path is the one of ResNet-50, DenseNet-169, ShuffleNet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import distributed_worker
import numpy as np
import pytest
import torch
from PIL import Image

from companion import records
from companion.data import imagenet as folders
from companion.data.sources import DataError
from companion.fixed_classifier import distributed, imagenet

WORKER = Path(distributed_worker.__file__)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """4 classes, 8 training and 4 validation JPEGs each, 40-96 px."""
    return folders.generate_folder(tmp_path_factory.mktemp("imagenet") / "folder")


def torchrun(*arguments: str, processes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", str(WORKER), *arguments]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(Path(imagenet.__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


# ---------------------------------------------------------------- folders and transforms


def test_scan_and_transforms(image_folder):
    found = folders.scan(image_folder)
    assert found.classes == tuple(f"n{k:08d}" for k in range(4))
    assert (len(found.train), len(found.val)) == (32, 16)
    assert sorted({label for _, label in found.val}) == [0, 1, 2, 3]
    with Image.open(found.train[0][0]) as image:
        image = image.convert("RGB")
        torch.manual_seed(0)
        crop = folders.TrainTransform(224)(image)
        assert crop.shape == (3, 224, 224) and crop.dtype == torch.uint8
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 300, 3), np.uint8))
    center = folders.EvalTransform(224, 256)(wide)  # short side already 256: a pure crop
    expected = np.asarray(wide)[16:240, 38:262].transpose(2, 0, 1)
    assert torch.equal(center, torch.from_numpy(expected.copy()))


def test_random_resized_crop_boxes_follow_the_recipe():
    transform = folders.TrainTransform(224)
    torch.manual_seed(0)
    for _ in range(200):
        left, top, w, h = transform.crop_box(500, 375)
        assert 0 <= left <= 500 - w and 0 <= top <= 375 - h
        assert 0.08 * 0.9 <= w * h / (500 * 375) <= 1.0
        assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
    assert transform.crop_box(400, 3) == (198, 0, 4, 3)  # no box fits: center, ratio 4/3


def test_missing_and_flat_validation_folders(tmp_path, monkeypatch, image_folder):
    monkeypatch.delenv(folders.ENV_VARIABLE, raising=False)
    with pytest.raises(DataError, match=folders.ENV_VARIABLE):
        folders.scan()
    monkeypatch.setenv(folders.ENV_VARIABLE, str(image_folder))
    assert folders.scan().root == image_folder
    root = folders.generate_folder(tmp_path / "flat", classes=2, train_per_class=2,
                                   val_per_class=2)
    lines = []
    for path in sorted((root / "val").rglob("*.JPEG")):  # flatten val/ as distributed
        lines.append(f"{path.name} {path.parent.name}")
        path.rename(root / "val" / path.name)
        path.parent.rmdir() if not any(path.parent.iterdir()) else None
    with pytest.raises(DataError, match="sort-val"):
        folders.scan(root)
    labels = tmp_path / "val_labels.txt"
    labels.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataError, match="nothing was moved"):
        folders.sort_val(root, labels)
    assert len(list((root / "val").glob("*.JPEG"))) == 4
    kaggle = tmp_path / "LOC_val_solution.csv"
    kaggle.write_text("ImageId,PredictionString\n" + "".join(
        f"{line.split()[0].removesuffix('.JPEG')},{line.split()[1]} 1 2 3 4\n" for line in lines))
    folders.main(["sort-val", str(root), str(kaggle)])
    assert len(folders.scan(root).val) == 4


def test_configs_and_profiles(image_folder):
    paper = imagenet.make_config("resnet50", "fixed")
    assert (paper.epochs, paper.batch_size, paper.lr_milestones) == (90, 256, (30, 60))
    assert (paper.image_size, paper.resize_size, paper.weight_decay) == (224, 256, 1e-4)
    assert imagenet.make_config(device="auto") == imagenet.make_config()
    smoke = imagenet.make_config("shufflenet", profile="smoke", data_source=image_folder)
    assert smoke.data_source == str(image_folder) and smoke.image_size == 32
    assert imagenet.record_path(smoke).parent.name == "fixed-classifier-imagenet-smoke"
    with pytest.raises(ValueError, match="network must be one of"):
        imagenet.make_config("vgg16")
    with pytest.raises(SystemExit):
        imagenet.main(["--profile", "smoke", "--data-source", str(image_folder / "missing")])


# ---------------------------------------------------------------- data-parallel training


def test_teardown_frees_a_wrapper_left_in_a_reference_cycle(tmp_path):
    """A DDP wrapper held by a reference cycle (in a fresh process DDP sits in one itself;
    a trainer with callbacks is another) must be freed, with the group, by teardown, not at
    interpreter exit."""
    import gc
    import weakref

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    gc.disable()  # only teardown's own collection may free the wrapper
    try:
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 2))
        model(torch.randn(4, 3)).sum().backward()
        wrapper = weakref.ref(model)
        holder: dict = {"model": model}
        holder["self"] = holder  # the cycle
        del model, holder
        assert wrapper() is not None  # the cycle keeps it alive after del
        distributed.teardown()
        assert wrapper() is None and not dist.is_initialized()
    finally:
        gc.enable()
        distributed.teardown()


def test_two_processes_step_like_one_on_the_union_of_their_batches(tmp_path):
    result = torchrun("step", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"step-rank{r}.pt", weights_only=True) for r in (0, 1))
    module = distributed_worker.batch_norm_free_model()
    context = distributed.Context(0, 1, 0, torch.device("cpu"))
    model, optimizer = distributed.wrap(module, context), distributed_worker.sgd(module)
    images, labels = distributed_worker.fixed_batch()
    for _ in range(2):
        distributed.train_step(model, optimizer, images, labels, context.device)
    for name, value in module.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name  # DDP keeps the ranks identical
        torch.testing.assert_close(rank0[name], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(rank0["4.weight"], distributed_worker.batch_norm_free_model()
                           .state_dict()["4.weight"])  # the steps did move the weights


def test_torchrun_writes_one_record_and_keeps_the_ranks_identical(tmp_path, image_folder):
    result = torchrun("run", str(tmp_path), str(image_folder))
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"run-rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    folder = records.results_dir() / "fixed-classifier-imagenet-smoke"
    (path,) = folder.iterdir()  # one record, no checkpoint left
    record = json.loads(path.read_text())
    config = imagenet.make_config(**_worker_config(image_folder))
    assert path.name == f"{records.config_hash(config)}.json"
    assert (record["world_size"], record["n_train"], record["n_test"]) == (2, 32, 16)
    assert record["history"]["epoch"] == [1, 2] and not record["diverged"]
    assert record["history"]["learning_rate"] == [0.1, 0.01]
    assert 0 <= record["test_accuracy"] <= 1 and record["workers_per_process"] == 1
    assert (result.stdout + result.stderr).count("epoch 1/2:") == 1  # only rank 0 logs


def _worker_config(folder: Path) -> dict:
    return {"network": "resnet20", "classifier": "fixed", "profile": "smoke",
            "data_source": folder, "device": "cpu"}


def test_a_killed_run_resumes_on_another_number_of_processes(tmp_path, image_folder):
    config = imagenet.make_config(**_worker_config(image_folder))
    killed = torchrun("run", str(tmp_path), str(image_folder), "kill")
    assert killed.returncode != 0
    assert not imagenet.record_path(config).exists()
    state = torch.load(imagenet.checkpoint_path(config), weights_only=True)  # plain data
    assert state["world_size"] == 2 and state["epochs"]["epoch"] == [1]
    resumed = torchrun("run", str(tmp_path), str(image_folder), processes=1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads(imagenet.record_path(config).read_text())
    assert record["resumed_after_epoch"] == 1 and record["world_size"] == 1
    assert record["history"]["epoch"] == [1, 2]
    assert record["history"]["train_loss"][0] == state["epochs"]["train_loss"][0]
    assert not imagenet.checkpoint_path(config).exists()
