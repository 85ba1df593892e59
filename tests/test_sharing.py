"""A shared server: the operator's settings, what a visitor may load, the size check before any weights are read,
one load at a time, and the bounded pool of heavy requests (models/settings.py, models/access.py,
models/runtime.py, models/loading.py, ui/services.py). No network: a fake hub is a temporary directory laid out as
the Hugging Face cache, or huggingface_hub's metadata calls monkeypatched."""

from __future__ import annotations

import gc
import json
import shutil
import struct
import threading
import time
import weakref
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from test_app_pages import APP, OTHER, assert_clean

import models
from models import ModelLoadError, Settings, access, read_settings
from models.access import ModelSize
from models.runtime import SlotPool
from ui.cache import ByteBudgetCache

GB = 2**30
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No operator setting leaks in from the machine running the tests; no hub request may be made."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for variable, _ in models.settings.FIELDS.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv(models.settings.SETTINGS_VARIABLE, raising=False)


# --- the settings -------------------------------------------------------------------------------------------------

def test_the_defaults_leave_a_single_users_run_as_it_was() -> None:
    settings = read_settings({})
    assert settings == Settings()
    assert (settings.other_models, settings.allow, settings.local_paths) == (True, (), True)
    assert settings.max_parameters is None and settings.max_model_bytes is None
    assert settings.model_cache_bytes == 4096 * 2**20 and settings.pickle_weights is False


def test_settings_read_from_a_toml_file_and_the_environment_wins(tmp_path: Path) -> None:
    """The file may be Streamlit's own secrets.toml: only its [explain] table is read."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('api_key = "unrelated"\n\n[explain]\nother_models = true\n'
                       'allow = ["google/*", "facebook/deit-*"]\nlocal_paths = false\nmax_parameters = "1.5B"\n'
                       'max_model_mb = 512\nheavy_slots = 3\n')
    settings = read_settings({"EXPLAIN_SETTINGS": str(secrets)})
    assert settings.allow == ("google/*", "facebook/deit-*")
    assert settings.local_paths is False and settings.other_models is True
    assert settings.max_parameters == 1_500_000_000
    assert settings.max_model_bytes == 512 * 2**20 and settings.heavy_slots == 3
    environment = {"EXPLAIN_SETTINGS": str(secrets), "EXPLAIN_LOCAL_PATHS": "yes", "EXPLAIN_ALLOW": "acme/*, x/y ",
                   "EXPLAIN_MAX_PARAMETERS": "200M", "EXPLAIN_MODEL_CACHE_MB": "1024"}
    settings = read_settings(environment)
    assert settings.local_paths is True and settings.allow == ("acme/*", "x/y")
    assert settings.max_parameters == 200_000_000 and settings.model_cache_bytes == 1024 * 2**20
    assert settings.max_model_bytes == 512 * 2**20  # from the file, not overridden


@pytest.mark.parametrize("environment, named", [
    ({"EXPLAIN_LOCAL_PATHS": "maybe"}, "local_paths (EXPLAIN_LOCAL_PATHS) is 'maybe', which is not true or false"),
    ({"EXPLAIN_MAX_MODEL_MB": "-5"}, "max_model_mb (EXPLAIN_MAX_MODEL_MB)"),
    ({"EXPLAIN_HEAVY_SLOTS": "2.5"}, "heavy_slots (EXPLAIN_HEAVY_SLOTS) is '2.5', which is not a positive whole"),
    ({"EXPLAIN_SETTINGS": "/nonexistent/settings.toml"}, "cannot be read"),
])
def test_a_setting_that_cannot_be_read_is_named_not_ignored(environment: dict, named: str) -> None:
    with pytest.raises(ValueError, match="fix") as error:
        read_settings(environment)
    assert named in str(error.value)


def test_a_misspelt_setting_in_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("[explain]\nlocal_path = false\n")
    with pytest.raises(ValueError, match=r"unknown settings in \[explain\] \(local_path\)"):
        read_settings({"EXPLAIN_SETTINGS": str(path)})


# --- what a visitor may load --------------------------------------------------------------------------------------

def test_registry_models_are_always_allowed() -> None:
    closed = Settings(other_models=False, allow=("nothing/*",), local_paths=False)
    for name in models.REGISTRY:
        access.check(name, closed)
    assert models.load_spec("minilm", allow_download=False, settings=closed).name == "minilm"


def test_with_other_models_off_only_the_list_is_offered(tiny_checkpoints) -> None:
    closed = Settings(other_models=False)
    sentences = set()
    for typed in ("google-bert/bert-base-uncased", str(tiny_checkpoints("bert")), "/no/such/dir"):
        with pytest.raises(ModelLoadError) as error:
            models.load(typed, allow_download=False, settings=closed)
        sentences.add(str(error.value))
    assert sentences == {f"This server offers only its listed models ({', '.join(models.REGISTRY)}): pick one of them."}


def test_with_local_paths_off_an_existing_and_a_missing_path_get_the_same_sentence(tiny_checkpoints, tmp_path) -> None:
    settings = Settings(local_paths=False)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    typed = [str(tiny_checkpoints("bert")), str(tmp_path / "missing"), str(a_file), "~", "./", "../etc"]
    sentences = set()
    for path in typed:
        with pytest.raises(ModelLoadError) as error:
            models.load(path, allow_download=False, settings=settings)
        sentences.add(str(error.value))
    assert sentences == {"This server does not open local paths: pick a model in the list or give a Hugging Face "
                         "hub id such as google-bert/bert-base-uncased."}


def test_with_local_paths_off_a_hub_id_that_names_a_directory_is_treated_as_a_missing_hub_model(
        tiny_checkpoints, tmp_path, monkeypatch) -> None:
    """transformers opens a directory before asking the hub; 'acme/model' existing under the working directory
    must not load, nor be told apart from a hub id that does not exist."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_checkpoints("bert"), tmp_path / "acme" / "model")
    settings = Settings(local_paths=False)
    messages = []
    for typed in ("acme/model", "acme/missing"):
        with pytest.raises(ModelLoadError) as error:
            models.load(typed, allow_download=False, settings=settings)
        messages.append(str(error.value).replace(typed, "NAME"))
    assert messages[0] == messages[1]
    assert "no network and it is not in the local Hugging Face cache" in messages[0]
    assert "local checkpoint directory" not in messages[0]  # not suggested where it is refused


def test_the_allow_list_takes_hub_ids_and_patterns(tiny_checkpoints, tmp_path) -> None:
    settings = Settings(allow=("google/*", "facebook/deit-tiny-*"))
    access.check("google/vit-base-patch16-224", settings)
    access.check("Google/ViT-Base", settings)  # hub ids are not case-sensitive
    access.check("facebook/deit-tiny-patch16-224", settings)
    for refused in ("facebook/deit-base-patch16-224", "evil/google", str(tiny_checkpoints("bert"))):
        with pytest.raises(ModelLoadError) as error:
            access.check(refused, settings)
        assert str(error.value) == (f"'{refused}' is not among the models this server allows: pick a model in the list "
                                    "or give a Hugging Face hub id matching google/*, facebook/deit-tiny-*.")
    # a local directory is matched by its absolute path, so ../ cannot step past the pattern
    allowed = tmp_path / "served"
    allowed.mkdir()
    paths = Settings(allow=(str(allowed / "*"),))
    access.check(str(allowed / "bert"), paths)
    with pytest.raises(ModelLoadError):
        access.check(str(allowed / ".." / "elsewhere"), paths)


def test_a_model_that_needs_remote_code_gets_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "my-own-architecture", "architectures": ["MyModel"],
        "auto_map": {"AutoConfig": "configuration_mine.MyConfig", "AutoModel": "modeling_mine.MyModel"}}))
    with pytest.raises(ModelLoadError) as error:
        models.load(str(tmp_path), allow_download=False)
    assert str(error.value) == (f"'{tmp_path}' needs Python code from its own repository (trust_remote_code), which "
                                "this app never runs: pick a model whose architecture transformers includes.")


# --- the size, from metadata only ---------------------------------------------------------------------------------

def header_only_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """A .safetensors file holding only its header: what the size check reads (its tensors are never read)."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for extent in shape:
            count *= extent
        end = offset + count * access.SAFETENSORS_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = end
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded)


def test_safetensors_headers_give_parameters_and_dtype_without_the_tensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {"w": torch.zeros(3, 5), "b": torch.zeros(5, dtype=torch.bfloat16),
               "i": torch.zeros(2, dtype=torch.int64)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert access.directory_size(tmp_path) == ModelSize(15 + 5 + 2, 15 * 4 + 5 * 2 + 2 * 8, "float32", False)
    # 70 billion bfloat16 parameters in two shards named by the index: a few hundred bytes on disk
    huge = tmp_path / "huge"
    huge.mkdir()
    header_only_safetensors(huge / "model-00001-of-00002.safetensors", {"a": ("BF16", [1_000_000, 35_000])})
    header_only_safetensors(huge / "model-00002-of-00002.safetensors", {"b": ("BF16", [1_000_000, 35_000])})
    (huge / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": 140_000_000_000},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert access.directory_size(huge) == ModelSize(70_000_000_000, 140_000_000_000, "bfloat16", False)
    assert sum(f.stat().st_size for f in huge.iterdir()) < 2_000
    # shards not downloaded yet: the index's total size and the config's dtype
    (huge / "model-00002-of-00002.safetensors").unlink()
    (huge / "config.json").write_text(json.dumps({"dtype": "bfloat16"}))
    assert access.directory_size(huge) == ModelSize(70_000_000_000, 140_000_000_000, "bfloat16", False)


@pytest.mark.parametrize("name", ["llama", "bart", "vit"])
def test_the_size_read_from_headers_is_the_loaded_models_parameter_count(name, tiny_checkpoints, tiny_loaded) -> None:
    """What the checkpoint stores: every parameter once (tied ones too) and persistent buffers such as BART's
    final_logits_bias, which also take memory once loaded."""
    size = access.model_size(str(tiny_checkpoints(name)))
    stored = {t.data_ptr(): t for t in tiny_loaded(name).model.state_dict().values()}  # tied tensors counted once
    assert size.parameters == sum(t.numel() for t in stored.values())
    assert size.bytes == sum(t.numel() * t.element_size() for t in stored.values())
    assert size.dtype == "float32" and not size.pickle


def test_limits_name_the_models_size_and_the_limit(monkeypatch) -> None:
    seventy = ModelSize(70_000_000_000, 140_000_000_000, "bfloat16")
    with pytest.raises(ModelLoadError) as error:
        access.check_size("acme/huge", seventy, Settings(max_parameters=1_000_000_000))
    assert str(error.value) == ("'acme/huge' has 70 billion parameters, over this server's limit of 1.0 billion: "
                                "pick a smaller model.")
    with pytest.raises(ModelLoadError) as error:
        access.check_size("acme/huge", seventy, Settings(max_model_bytes=GB))
    # 70e9 x 4 bytes in float32 = 260.8 GiB
    assert str(error.value) == ("'acme/huge' has 70 billion parameters (260.8 GB in float32), over the 1.0 GB this "
                                "server allows (this server's limit): pick a smaller model.")
    # the default: the smaller of half the free memory and the model cache's budget
    small = ModelSize(600_000_000, 1_200_000_000, "bfloat16")  # 2.2 GB in float32, 1.1 GB in bfloat16
    monkeypatch.setattr(access, "memory_available", lambda: 4 * GB)
    assert access.size_limit(Settings()) == (2 * GB, "half of this server's free memory")
    with pytest.raises(ModelLoadError, match=r"2.2 GB in float32\), over the 2.0 GB this server allows \(half of"):
        access.check_size("acme/small", small, Settings())
    assert access.check_size("acme/small", small, Settings(), dtype="bfloat16") == 1_200_000_000
    monkeypatch.setattr(access, "memory_available", lambda: 64 * GB)
    assert access.size_limit(Settings()) == (4 * GB, "the model cache's budget")
    assert access.check_size("acme/small", small, Settings()) == 2_400_000_000
    # an explicit limit over the app's cache: the cache still bounds what the app loads
    with pytest.raises(ModelLoadError, match=r"over the 1.0 GB this server allows \(the model cache's budget\)"):
        access.check_size("acme/small", small, Settings(max_model_bytes=100 * GB), cache_bytes=GB)


def test_a_damaged_weights_file_gets_one_sentence_that_names_no_path(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 50) + b"{not json")
    with pytest.raises(ModelLoadError) as error:
        models.load(str(tmp_path), allow_download=False)
    assert str(error.value).startswith(f"The weights' metadata of '{tmp_path}' cannot be read (")
    assert str(error.value).count(str(tmp_path)) == 1 and str(error.value).endswith("pick another model.")


def test_pickle_weights_are_refused_unless_allowed(tiny_checkpoints, tmp_path: Path) -> None:
    source = tiny_checkpoints("gpt2")
    shutil.copytree(source, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors"))
    reference = models.load(str(source), allow_download=False).model
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    size = access.directory_size(tmp_path)
    assert size.pickle and size.bytes == (tmp_path / "pytorch_model.bin").stat().st_size
    with pytest.raises(ModelLoadError) as error:
        models.load(str(tmp_path), allow_download=False)
    assert str(error.value) == (f"'{tmp_path}' stores its weights only as pickle files (pytorch_model.bin), which can "
                                "run code when loaded, and this server loads safetensors weights only: pick a model "
                                "that has model.safetensors.")
    allowed = models.load(str(tmp_path), allow_download=False, settings=Settings(pickle_weights=True)).model
    for (name, weight), (_, expected) in zip(allowed.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(weight, expected), name


# --- a fake hub ---------------------------------------------------------------------------------------------------

def cache_repo(cache: Path, repo_id: str) -> Path:
    """The snapshot directory of `repo_id` in a Hugging Face cache laid out at `cache` (refs/main -> SHA)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(SHA)
    snapshot = repo / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    return snapshot


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, tiny_checkpoints) -> Path:
    """A Hugging Face cache with acme/small (a tiny Llama, complete), acme/huge (a Llama config and 70 billion
    bfloat16 parameters in header-only shards) and acme/remote (its config only: the weights are on the 'hub')."""
    import huggingface_hub.constants
    import transformers

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    shutil.copytree(tiny_checkpoints("llama"), cache_repo(cache, "acme/small"), dirs_exist_ok=True)
    config = transformers.LlamaConfig(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64,
                                      intermediate_size=28672, vocab_size=128256, dtype="bfloat16")
    huge = cache_repo(cache, "acme/huge")
    config.save_pretrained(huge)
    header_only_safetensors(huge / "model-00001-of-00002.safetensors", {"a": ("BF16", [1_000_000, 35_000])})
    header_only_safetensors(huge / "model-00002-of-00002.safetensors", {"b": ("BF16", [1_000_000, 35_000])})
    (huge / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": 140_000_000_000},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    config.save_pretrained(cache_repo(cache, "acme/remote"))
    return cache


@pytest.fixture
def no_weights_read(monkeypatch):  # noqa: ANN201
    """Every weights loader fails the test if called."""
    import transformers

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("weights were loaded")

    for loader in ("AutoModelForCausalLM", "AutoModel", "AutoModelForSequenceClassification"):
        monkeypatch.setattr(getattr(transformers, loader), "from_pretrained", refuse)


def test_a_small_hub_model_loads_from_the_cache_by_its_id(fake_hub) -> None:
    loaded = models.load("acme/small", allow_download=False, settings=Settings(local_paths=False))
    assert loaded.spec.name == "acme/small" and loaded.spec.kind is models.DECODER
    parameters = sum(p.numel() for p in loaded.model.parameters())
    assert access.model_size("acme/small", local_only=True).parameters == parameters


def test_an_oversized_hub_model_is_refused_before_its_weights_are_read(fake_hub, no_weights_read) -> None:
    with pytest.raises(ModelLoadError) as error:
        models.load("acme/huge", allow_download=False, settings=Settings(max_model_bytes=4 * GB))
    assert str(error.value) == ("'acme/huge' has 70 billion parameters (260.8 GB in float32), over the 4.0 GB this "
                                "server allows (this server's limit): pick a smaller model.")
    assert models.loading.LOADING.busy == 0


def test_an_oversized_model_on_the_hub_is_refused_from_its_metadata(fake_hub, no_weights_read, monkeypatch) -> None:
    """Not in the cache: huggingface_hub's metadata call (monkeypatched) gives its size; nothing is downloaded."""
    import huggingface_hub
    from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata, TensorInfo

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(models.loading, "hub_reachable", lambda timeout=3.0: True)
    asked = []

    def metadata(repo_id: str, **kwargs) -> SafetensorsRepoMetadata:  # noqa: ANN003
        asked.append(repo_id)
        tensor = TensorInfo(dtype="BF16", shape=[1_000_000, 7_000], data_offsets=(0, 14_000_000_000))
        return SafetensorsRepoMetadata(metadata=None, sharded=False, weight_map={"w": "model.safetensors"},
                                       files_metadata={"model.safetensors": SafetensorsFileMetadata({}, {"w": tensor})})

    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", metadata)
    with pytest.raises(ModelLoadError) as error:
        models.load("acme/remote", settings=Settings(max_parameters=1_000_000_000))
    assert asked == ["acme/remote"]
    assert str(error.value) == ("'acme/remote' has 7.0 billion parameters, over this server's limit of 1.0 billion: "
                                "pick a smaller model.")

    # a repository of pickle weights only: their sizes come from the file listing
    from huggingface_hub.utils import NotASafetensorsRepoError

    def not_safetensors(repo_id: str, **kwargs):  # noqa: ANN003, ANN202
        raise NotASafetensorsRepoError("no model.safetensors")

    class Info:
        siblings = [huggingface_hub.hf_api.RepoSibling("pytorch_model.bin", size=500_000_000), 
                    huggingface_hub.hf_api.RepoSibling("config.json", size=600)]

    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", not_safetensors)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kwargs: Info())
    size = access.model_size("acme/remote")
    assert size == ModelSize(250_000_000, 500_000_000, "bfloat16", True)  # the config says bfloat16: 2 bytes each
    with pytest.raises(ModelLoadError, match="stores its weights only as pickle files"):
        models.load("acme/remote")


# --- loading: one at a time, and a failure gives back what it took -------------------------------------------------

def test_a_failed_load_frees_what_it_took(tiny_checkpoints, monkeypatch) -> None:
    import transformers

    held = []

    def allocate_then_fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        weights = torch.ones(1_000_000)
        held.append(weakref.ref(weights))
        raise OSError("disk full while reading the weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", allocate_then_fail)
    with pytest.raises(ModelLoadError, match="disk full") as error:
        models.load(str(tiny_checkpoints("llama")), allow_download=False)
    gc.collect()
    assert held and held[0]() is None, "the failed load's tensors are still referenced by its exception"
    assert error.value is not None  # the caller still holds the error
    assert models.loading.LOADING.busy == 0 and models.loading.LOADING.waiting == 0


def test_the_model_cache_makes_room_before_the_weights_load(tiny_checkpoints) -> None:
    cache = ByteBudgetCache(100_000)
    cache.put("old", object(), 40_000)
    cache.put("older", object(), 30_000)
    cache.get("old")  # "older" is now the least recently used
    path = str(tiny_checkpoints("gpt2"))
    needed = access.model_size(path).parameters * 4
    assert needed == 49_664  # 70,000 + 49,664 is over the budget; 40,000 + 49,664 is not
    models.load(path, allow_download=False, cache=cache)
    assert cache.get("older") == (False, None) and cache.get("old")[0]
    with pytest.raises(ModelLoadError, match=r"has 12 thousand parameters \(48 KB in float32\), over the 1 KB this "
                                              r"server allows \(the model cache's budget\)"):
        models.load(path, allow_download=False, cache=ByteBudgetCache(1000))


def test_make_room_evicts_least_recently_used_first() -> None:
    freed = []
    cache = ByteBudgetCache(100, on_evict=lambda: freed.append(1))
    cache.put("a", "a", 60)
    cache.put("b", "b", 30)
    cache.make_room(10)
    assert cache.stats().bytes == 90 and not freed  # 90 + 10 fits
    cache.make_room(50)
    assert cache.get("a") == (False, None) and cache.get("b") == (True, "b") and cache.stats().bytes == 30
    assert freed == [1]


# --- the slot pool ------------------------------------------------------------------------------------------------

def test_eight_requests_on_two_slots_queue_in_order_and_see_their_place() -> None:
    pool = SlotPool(2)
    running, peak, order, told = [0], [0], [], {}
    lock = threading.Lock()
    gate = threading.Event()

    def request(number: int) -> None:
        def on_wait(ahead: int) -> None:
            told.setdefault(number, []).append(ahead)

        with pool.slot(on_wait):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                order.append(number)
            gate.wait()
            time.sleep(0.01)
            with lock:
                running[0] -= 1

    threads = []
    for number in range(8):
        threads.append(threading.Thread(target=request, args=(number,)))
        threads[-1].start()
        deadline = time.time() + 5
        while pool.busy + pool.waiting < number + 1 and time.time() < deadline:  # one arrives after the other
            time.sleep(0.001)
    assert (pool.busy, pool.waiting) == (2, 6)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert peak[0] == 2 and order == list(range(8))  # never more than two at once; first come, first served
    # request n (n >= 2) arrived with n requests ahead of it (two running, n - 2 waiting) and saw the line shorten
    for number in range(2, 8):
        assert told[number][0] == number and told[number] == sorted(told[number], reverse=True)
    assert 0 not in told and 1 not in told
    assert (pool.busy, pool.waiting) == (0, 0)


def test_a_slot_is_reentrant_and_a_waiter_that_leaves_frees_its_place() -> None:
    pool = SlotPool(1)
    with pool.slot(), pool.slot():  # a heavy request that runs another one in the same thread
        assert pool.busy == 1
        left = []

        def impatient() -> None:
            def on_wait(ahead: int) -> None:
                raise KeyboardInterrupt  # as a Streamlit rerun interrupts a waiting script

            try:
                pool.acquire(on_wait)
            except KeyboardInterrupt:
                left.append(True)

        thread = threading.Thread(target=impatient)
        thread.start()
        thread.join(5)
        assert left == [True] and pool.waiting == 0
    assert pool.busy == 0
    with pytest.raises(RuntimeError):
        pool.release()


def test_heavy_slots_follow_the_thread_policy(monkeypatch) -> None:
    import os

    from models import runtime

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert runtime.heavy_slot_count() == 8
    monkeypatch.setenv("EXPLAIN_THREADS", "2")
    assert runtime.heavy_slot_count() == 4
    monkeypatch.setenv("EXPLAIN_HEAVY_SLOTS", "3")
    assert runtime.heavy_slot_count() == 3


# --- the command line applies the limit too -----------------------------------------------------------------------

def test_the_command_line_refuses_a_model_over_the_limit(tiny_checkpoints, tmp_path, monkeypatch, capsys) -> None:
    from cli.main import main

    path = str(tiny_checkpoints("bert"))
    parameters = access.model_size(path).parameters
    monkeypatch.setenv("EXPLAIN_MAX_PARAMETERS", "1000")
    assert main(["text", "The cat sat.", "--model", path, "--out", str(tmp_path / "out.npz")]) == 2
    assert capsys.readouterr().err == (f"error: '{path}' has {access.human_count(parameters)} parameters, over this "
                                       "server's limit of 1.0 thousand: pick a smaller model.\n")
    assert not (tmp_path / "out.npz").exists()


# --- the app ------------------------------------------------------------------------------------------------------

def other_model(kind: str, typed: str, page: str = "app_pages/text_attention.py") -> AppTest:
    """The app with `typed` in the sidebar's free field for models of `kind`, on `page`."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.selectbox(key=f"{kind}_model_choice").select(OTHER).run()
    at.text_input(key=f"{kind}_model_other").input(typed).run()
    at.switch_page(page).run()
    assert_clean(at)
    return at


def test_app_with_local_paths_off_shows_one_sentence_for_existing_and_missing_paths(tiny_checkpoints, tmp_path,
                                                                                      monkeypatch) -> None:
    monkeypatch.setenv("EXPLAIN_LOCAL_PATHS", "false")
    shown = []
    for typed in (str(tiny_checkpoints("bert-classifier")), str(tmp_path / "does-not-exist")):
        at = other_model("text", typed)
        shown.append([e.value for e in at.error])
        assert not at.get("plotly_chart")
    assert shown[0] == shown[1] == ["This server does not open local paths: pick a model in the list or give a Hugging "
                                    "Face hub id such as google-bert/bert-base-uncased. Pick another model in the "
                                    "sidebar."]
    options = at.selectbox(key="text_model_choice").options
    assert options[-1] == "other (hub id)…"


def test_app_refuses_a_model_over_the_size_limit_and_hides_other_models_when_told(tiny_checkpoints,
                                                                                   monkeypatch) -> None:
    from ui import services

    path = str(tiny_checkpoints("llama"))
    parameters = access.model_size(path).parameters
    refused = [f"'{path}' has {access.human_count(parameters)} parameters, over this server's limit of 10 thousand: "
               "pick a smaller model. Pick another model in the sidebar."]
    services.models_cache.clear()  # refused before loading, whatever earlier tests loaded
    monkeypatch.setenv("EXPLAIN_MAX_PARAMETERS", "10k")
    at = other_model("decoder", path, "app_pages/decoder.py")
    assert [e.value for e in at.error] == refused
    # Loaded while the limit allowed it, then the operator lowers the limit: refused from the cache too.
    monkeypatch.delenv("EXPLAIN_MAX_PARAMETERS")
    assert not other_model("decoder", path, "app_pages/decoder.py").error
    monkeypatch.setenv("EXPLAIN_MAX_PARAMETERS", "10k")
    assert [e.value for e in other_model("decoder", path, "app_pages/decoder.py").error] == refused
    monkeypatch.setenv("EXPLAIN_OTHER_MODELS", "0")
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert_clean(at)
    assert not any("other" in option for option in at.selectbox(key="decoder_model_choice").options)


def test_app_settings_that_cannot_be_read_stop_the_app_with_the_sentence(monkeypatch) -> None:
    monkeypatch.setenv("EXPLAIN_LOCAL_PATHS", "perhaps")
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert [e.value for e in at.error] == ["The setting local_paths (EXPLAIN_LOCAL_PATHS) is 'perhaps', which is not "
                                           "true or false: fix it and restart."]


def hold(pool: SlotPool, places: int) -> threading.Event:
    """Take `places` places of `pool` in helper threads until the returned event is set."""
    done, taken = threading.Event(), threading.Barrier(places + 1)

    def holder() -> None:
        with pool.slot():
            taken.wait(60)
            done.wait(60)

    for _ in range(places):
        threading.Thread(target=holder, daemon=True).start()
    taken.wait(60)  # a model the app started loading (its warm-up) may hold the place first
    return done


def release_when_someone_waits(pool: SlotPool, done: threading.Event) -> None:
    def watch() -> None:
        deadline = time.time() + 60
        while pool.waiting == 0 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        done.set()

    threading.Thread(target=watch, daemon=True).start()


def test_app_shows_the_load_queue_while_another_model_loads(tiny_checkpoints, tmp_path) -> None:
    fresh = tmp_path / "fresh-llama"  # a directory no test has loaded yet: the app must load it
    shutil.copytree(tiny_checkpoints("llama"), fresh)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.selectbox(key="decoder_model_choice").select(OTHER).run()
    at.text_input(key="decoder_model_other").input(str(fresh)).run()
    done = hold(models.loading.LOADING, 1)
    release_when_someone_waits(models.loading.LOADING, done)
    started = time.perf_counter()
    at.switch_page("app_pages/decoder.py").run()
    assert time.perf_counter() - started >= 0.3
    assert_clean(at)
    waited = [c.value for c in at.caption if c.value.startswith("Waited ")]
    assert len(waited) == 1 and waited[0].endswith(" s for another model to load."), waited
    assert not at.error and at.get("plotly_chart")


def test_app_shows_the_heavy_queue_when_every_slot_is_taken() -> None:
    from models.runtime import heavy_pool

    pool = heavy_pool()
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/text_rollout.py").run()  # the bundled MiniLM, zero-shot labels: gradients
    done = hold(pool, pool.slots)
    release_when_someone_waits(pool, done)
    at.text_area(key="tr_text").input(f"A sentence no other test explains, {time.time()}.").run()
    assert_clean(at)
    waited = [c.value for c in at.caption if c.value.startswith("Waited ")]
    assert waited and waited[0].endswith(" s for a free slot."), waited
    assert at.get("plotly_chart")


def test_queue_messages_count_what_is_ahead() -> None:
    from ui.services import heavy_queue_message, load_queue_message

    assert load_queue_message(1) == ("Waiting for another model to finish loading: 1 load ahead of yours (this server "
                                     "loads one model at a time).")
    assert heavy_queue_message(3, 2) == ("Waiting for a free slot: 3 requests ahead of yours (this server runs 2 heavy "
                                         "requests at a time).")
    assert heavy_queue_message(1, 1).startswith("Waiting for a free slot: 1 request ahead of yours (this server runs "
                                                "1 heavy request at a time)")


def test_a_model_in_memory_meets_the_operators_own_limits_but_not_the_free_memory_rule() -> None:
    # 30,000 float32 parameters take 120,000 bytes.
    access.check_loaded("m", 30_000, Settings())  # no operator limit: the free-memory rule guards loads only
    access.check_loaded("m", 30_000, Settings(max_parameters=30_000, max_model_bytes=120_000))
    with pytest.raises(ModelLoadError, match=r"^'m' has 30 thousand parameters, over this server's limit of 29 "
                                             r"thousand: pick a smaller model\.$"):
        access.check_loaded("m", 30_000, Settings(max_parameters=29_000))
    with pytest.raises(ModelLoadError, match=r"^'m' has 30 thousand parameters \(117 KB in float32\), over the 98 KB "
                                             r"this server allows \(this server's limit\): pick a smaller model\.$"):
        access.check_loaded("m", 30_000, Settings(max_model_bytes=100_000))
    access.check_loaded("m", 30_000, Settings(max_model_bytes=100_000), dtype="bfloat16")  # 60,000 bytes
