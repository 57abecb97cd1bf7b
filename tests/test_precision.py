"""The precision option: names, per-device choice of auto, int4 and int8 quantisation, plumbing."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from tiny_models import as_gguf_q4, loader_for, q4_1, tiny_llama, train_tokenizer

from assistant.errors import OptionsError
from assistant.models import get_model
from assistant.models.hf import HFChatModel
from assistant.models.precision import AUTO_CPU, check_precision, resolve


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend the CPU does (True) or does not (False) multiply bf16 natively."""
    from assistant.models import precision

    def set_to(native: bool):
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    return set_to


@pytest.mark.parametrize("device, native, auto", [
    ("cpu", True, AUTO_CPU), ("cpu", False, "fp32"), ("cuda", False, "bf16"),
    ("cuda:1", True, "bf16"), ("mps", True, "fp32")])
def test_auto_picks_per_device(bf16_cpu, device, native, auto):
    bf16_cpu(native)
    assert resolve("auto", device) == auto
    assert resolve(None, device) == auto
    assert resolve("fp32", device) == "fp32"


def test_auto_is_int4_for_a_model_whose_file_is_4_bit_on_a_cpu_with_native_bf16(bf16_cpu):
    from assistant.models.precision import AUTO_CPU_BY_MODEL

    bf16_cpu(True)
    assert resolve("auto", "cpu", "smollm2-135m-instruct") == "int4"
    assert resolve("auto", "cpu", "gemma3-270m") == resolve("auto", "cpu") == AUTO_CPU
    assert resolve("bf16", "cpu", "smollm2-135m-instruct") == "bf16"  # a choice wins
    assert resolve("auto", "cuda", "smollm2-135m-instruct") == "bf16"
    bf16_cpu(False)
    assert resolve("auto", "cpu", "smollm2-135m-instruct") == "fp32"
    assert set(AUTO_CPU_BY_MODEL.values()) <= {"fp32", "bf16", "int4", "int8"}


def test_a_cpu_without_native_bf16_keeps_fp32_even_if_auto_says_bf16(bf16_cpu, monkeypatch):
    from assistant.models import precision

    monkeypatch.setattr(precision, "AUTO_CPU", "bf16")
    bf16_cpu(False)
    assert resolve("auto", "cpu") == "fp32"
    bf16_cpu(True)
    assert resolve("auto", "cpu") == "bf16" and resolve("fp32", "cpu") == "fp32"


@pytest.mark.parametrize("flags, native", [("fpu avx2 avx512f avx512_bf16 avx512_vnni", True),
                                           ("fpu amx_bf16 amx_tile", True),
                                           ("fpu avx2 avx512f avx512_vnni", False)])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    from assistant.models.precision import BF16_FLAGS, cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert bool(cpu_flags(str(info)) & BF16_FLAGS) is native
    assert cpu_flags(str(tmp_path / "absent")) == set()  # not Linux: no claim


@pytest.mark.parametrize("name", ["int4", "int8"])
def test_int4_and_int8_are_cpu_kernels_so_a_gpu_gets_bf16(name):
    assert resolve(name, "cpu") == name and resolve(name, "cuda") == "bf16"
    assert resolve(name, "mps") == "fp32"


@pytest.mark.parametrize("bad", ["fp16", "int2", "8bit", "auto; rm -rf /"])
def test_unknown_precision_is_one_clear_error(bad):
    with pytest.raises(OptionsError, match="unknown precision.*auto, fp32, bf16, int4, int8"):
        check_precision(bad)
    with pytest.raises(OptionsError, match="unknown precision"):
        get_model("fake", "/tmp", precision=bad)


def test_cli_rejects_an_unknown_precision_with_exit_2():
    from assistant.cli.main import cli

    result = CliRunner().invoke(cli, ["--precision", "fp8", "models"])
    assert result.exit_code == 2 and "fp8" in result.output


@pytest.mark.parametrize("precision, linear", [("fp32", "torch.nn.modules.linear"),
                                               ("bf16", "torch.nn.modules.linear"),
                                               ("int4", "assistant.models.int4"),
                                               ("int8", "assistant.models.int8")])
def test_the_model_loads_in_the_precision_asked_for(precision, linear):
    import torch

    tokenizer = train_tokenizer()
    model = HFChatModel(model_name="tiny", kind="causal", device="cpu", precision=precision,
                        options={"max_new_tokens": 4},
                        loader=loader_for(as_gguf_q4(tiny_llama(tokenizer)), tokenizer))
    loaded = model.load()
    assert loaded.precision == precision
    layer = loaded.model.model.layers[0].mlp.up_proj
    assert type(layer).__module__.startswith(linear)
    if precision == "bf16":
        assert layer.weight.dtype == torch.bfloat16
    assert model.invoke("What is attention?").usage_metadata["output_tokens"] <= 4


def test_suite_key_precision_is_validated():
    from assistant.errors import InputError
    from assistant.evaluation.suite import make_suite

    assert make_suite({"datasets": ["x.jsonl"], "precision": "BF16"}, where="s").precision == "bf16"
    assert make_suite({"datasets": ["x.jsonl"]}, where="s").precision == "auto"
    with pytest.raises(InputError, match="precision"):
        make_suite({"datasets": ["x.jsonl"], "precision": "fp8"}, where="s")


def test_the_cache_tag_tells_precisions_apart(bf16_cpu):
    from assistant.models.fake import FakeChatModel
    from assistant.models.precision import cache_tag

    tokenizer = train_tokenizer()

    def tiny(precision):
        return HFChatModel(model_name="tiny", kind="causal", device="cpu", precision=precision,
                           loader=loader_for(tiny_llama(tokenizer), tokenizer))

    bf16_cpu(True)
    smollm2 = tiny("auto")
    smollm2.model_name = "smollm2-135m-instruct"
    assert cache_tag(smollm2) == "@int4"  # auto's choice for this model, before it loads
    assert cache_tag(tiny("fp32")) == ""  # the key of caches written before: still valid
    assert cache_tag(tiny("bf16")) == cache_tag(tiny("auto")) == f"@{AUTO_CPU}" == "@bf16"
    assert cache_tag(tiny("int8")) == "@int8"
    bf16_cpu(False)
    assert cache_tag(tiny("auto")) == ""
    loaded = tiny("bf16")
    loaded.load()
    assert cache_tag(loaded) == "@bf16"  # from the loaded weights, without resolving again
    assert cache_tag(FakeChatModel()) == ""


def test_int8_converts_only_linears_its_kernel_takes_and_keeps_their_outputs_close():
    import torch

    from assistant.models.int8 import Int8Linear, quantize

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 50),
                                torch.nn.Linear(50, 32))  # 50 wide: the kernel would crash
    x = torch.randn(3, 64)
    expected = model(x)
    quantize(model, keep=())
    assert [type(m).__name__ for m in model] == ["Int8Linear", "ReLU", "Int8Linear", "Linear"]
    assert isinstance(model[0], Int8Linear) and model[0].weight.dtype == torch.int8
    got = model(x.to(torch.bfloat16)).float()
    assert torch.allclose(got, expected, atol=0.1, rtol=0.05)


def test_int8_prompts_take_the_dequantised_path_and_agree_with_the_kernel_row_by_row():
    """Many rows (a prompt) run bf16's matmul on the dequantised weight, few (a decode step)
    the int8 kernel: both multiply the same int8 values, so row for row they agree."""
    import torch

    from assistant.models import int8

    torch.manual_seed(0)
    layer = int8.Int8Linear(torch.nn.Linear(64, 48))
    x = torch.randn(int8.DENSE_ROWS + 4, 64, dtype=torch.bfloat16)
    calls = []
    kernel = torch._weight_int8pack_mm
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "_weight_int8pack_mm", lambda *a: calls.append(a[0].shape[0]) or kernel(*a))
        many = layer(x).float()
        few = torch.cat([layer(x[i:i + 4]) for i in range(0, x.shape[0], 4)]).float()
    assert calls and all(n < int8.DENSE_ROWS for n in calls)  # only the small calls hit the kernel
    assert len(calls) == x.shape[0] // 4
    assert torch.allclose(many, few, atol=0.05, rtol=0.02)



def test_int4_finds_the_files_4_bit_grid_again_and_keeps_its_weights():
    """Q4_1 blocks (min and max on the grid) and Q4_K-like ones (a few levels used, the zero
    off the weights) both come back exactly: zero + step * q is the weight the file holds."""
    import torch

    from assistant.models.int4 import grid

    torch.manual_seed(0)
    q41 = q4_1(torch.randn(48, 96))
    levels = torch.randint(3, 13, (48, 96)).float()  # q in 3..12 of 0..15
    step = torch.rand(48, 3, 1).half().float().repeat_interleave(32, 1).reshape(48, 96) / 10
    q4k = levels * step - 0.37
    for weight in (q41, q4k):
        q, steps, zero = grid(weight)
        assert q.dtype == torch.uint8 and int(q.max()) <= 15
        again = zero.repeat_interleave(32, 1) + steps.repeat_interleave(32, 1) * q.float()
        assert torch.allclose(again, weight, atol=1e-6, rtol=0)


@pytest.mark.parametrize("weight", ["random", "17 levels", "width 40", "40 outputs"])
def test_int4_leaves_weights_that_are_not_on_a_4_bit_grid_alone(weight):
    """...or that the kernel cannot take (it packs outputs 16 at a time)."""
    import torch

    from assistant.models.int4 import Bf16Linear, grid, quantize

    torch.manual_seed(0)
    w = {"random": torch.randn(8, 64),
         "17 levels": torch.arange(32.0).repeat(8, 2) / 2 * (torch.arange(64) % 32 < 17),
         "width 40": torch.randn(8, 40), "40 outputs": q4_1(torch.randn(40, 64))}[weight]
    assert (grid(w) is not None) == (weight == "40 outputs")
    model = torch.nn.Sequential(torch.nn.Linear(w.shape[1], w.shape[0], bias=False))
    with torch.no_grad():
        model[0].weight.copy_(w)
    x = torch.randn(2, w.shape[1])
    expected = model(x)
    model, packed, kept = quantize(model)
    assert (packed, kept) == (0, 1) and isinstance(model[0], Bf16Linear)
    assert model[0].weight.dtype == torch.bfloat16  # bf16's matmul, as bf16 precision runs it
    got = model(x)
    assert got.dtype == torch.float32 and torch.allclose(got, expected, atol=0.05, rtol=0.02)
    # a prefill's last position: [rows, 1, d] cut from [rows, n, d], as logits_to_keep=1 does
    h = torch.randn(3, 5, w.shape[1])
    last = model(h[:, -1:, :])
    assert last.shape == (3, 1, w.shape[0]) and torch.equal(last, model(h[:, -1:, :].clone()))


def test_int4_multiplies_the_files_weights_on_both_paths_and_they_agree_row_by_row():
    """Few rows (a decode step) run the int4 kernel, many (a prompt) bf16's matmul on the
    same weights dequantised; both are close to fp32 on the file's weights."""
    import torch

    from assistant.models import int4

    torch.manual_seed(0)
    linear = as_gguf_q4(torch.nn.Sequential(torch.nn.Linear(96, 48)), skip=())[0]
    x = torch.randn(int4.DENSE_ROWS + 4, 96)
    expected = linear(x)
    model, packed, kept = int4.quantize(torch.nn.Sequential(linear))
    layer = model[0]
    assert (packed, kept) == (1, 0) and isinstance(layer, int4.Int4Linear)
    calls = []
    kernel = torch._weight_int4pack_mm_for_cpu
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "_weight_int4pack_mm_for_cpu",
                   lambda *a: calls.append(a[0].shape[0]) or kernel(*a))
        many = layer(x).float()
        few = torch.cat([layer(x[i:i + 4]) for i in range(0, x.shape[0], 4)]).float()
    assert len(calls) == x.shape[0] // 4 and all(n < int4.DENSE_ROWS for n in calls)
    scale = expected.abs().max()
    assert (many - expected).abs().max() < 0.02 * scale
    assert (few - expected).abs().max() < 0.02 * scale
    assert (many - few).abs().max() < 0.02 * scale


@pytest.fixture
def saved_q4_model(tmp_path):
    """A tiny llama on Q4_1's grid, saved as a safetensors folder like the converted GGUFs."""
    tokenizer = train_tokenizer()
    folder = tmp_path / "model"
    as_gguf_q4(tiny_llama(tokenizer)).save_pretrained(folder)

    def load():
        import torch
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return folder, load


def _logits(model):
    import torch

    with torch.no_grad():
        return model(torch.arange(3, 40)[None]).logits


def test_int4_packs_once_and_later_loads_read_the_packed_layers(saved_q4_model, monkeypatch):
    from assistant.models import int4

    folder, load = saved_q4_model
    first, packed, kept = int4.quantize(load())
    assert (folder / int4.CACHE_NAME).is_file() and packed > 0
    monkeypatch.setattr(int4, "grid", lambda *a, **k: pytest.fail("packed again"))
    again, packed_again, kept_again = int4.quantize(load())
    assert (packed_again, kept_again) == (packed, kept)
    assert _logits(again).equal(_logits(first))


@pytest.mark.parametrize("damage", ["torch upgraded", "weights changed", "torn file"])
def test_a_stale_or_torn_int4_cache_is_packed_again_and_rewritten(saved_q4_model, monkeypatch,
                                                                   damage):
    from assistant.models import int4

    folder, load = saved_q4_model
    expected = _logits(int4.quantize(load())[0])
    cache = folder / int4.CACHE_NAME
    if damage == "torch upgraded":
        monkeypatch.setattr(int4, "CACHE_FORMAT", "another")
    elif damage == "weights changed":
        weights = next(folder.glob("model*.safetensors"))
        os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    else:
        cache.write_bytes(cache.read_bytes()[:1000])
    calls = []
    grid = int4.grid
    monkeypatch.setattr(int4, "grid", lambda *a, **k: calls.append(1) or grid(*a, **k))
    model, packed, _ = int4.quantize(load())
    assert calls and _logits(model).equal(expected)
    assert int4.read_cache(cache, int4.cache_key(folder)) is not None  # rewritten, whole


def test_int4_without_a_folder_or_a_writable_one_still_packs(saved_q4_model, monkeypatch):
    from assistant.models import int4

    folder, load = saved_q4_model
    model = load()
    model.name_or_path = ""  # built in memory: nothing to key a cache on
    assert int4.cache_path(model) is None
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError("ro")))
    _, packed, _ = int4.quantize(load())  # a read-only cache folder: packed, not cached
    assert packed > 0 and not (folder / int4.CACHE_NAME).exists()
    assert not list(folder.glob(".*.tmp"))  # no torn temp file left behind


def test_an_int4_cache_of_another_model_is_not_used(saved_q4_model, monkeypatch):
    """The cache is outside data: buffers of other shapes are packed again, not loaded."""
    import torch
    from safetensors.torch import load_file, save_file

    from assistant.models import int4

    folder, load = saved_q4_model
    expected = _logits(int4.quantize(load())[0])
    cache = folder / int4.CACHE_NAME
    tensors = load_file(cache)
    name = next(k for k in tensors if k.endswith(".dense"))
    tensors[name] = torch.zeros(3, 5, dtype=torch.bfloat16)
    save_file(tensors, cache, metadata={"key": int4.cache_key(folder)})
    calls = []
    grid = int4.grid
    monkeypatch.setattr(int4, "grid", lambda *a, **k: calls.append(1) or grid(*a, **k))
    model, _, _ = int4.quantize(load())
    assert calls and _logits(model).equal(expected)
