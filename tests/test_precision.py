"""The precision option: names, per-device choice of auto, int8 quantisation, plumbing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from tiny_models import loader_for, tiny_llama, train_tokenizer

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


def test_int8_is_a_cpu_kernel_so_a_gpu_gets_bf16():
    assert resolve("int8", "cpu") == "int8" and resolve("int8", "cuda") == "bf16"


@pytest.mark.parametrize("bad", ["fp16", "int4", "8bit", "auto; rm -rf /"])
def test_unknown_precision_is_one_clear_error(bad):
    with pytest.raises(OptionsError, match="unknown precision.*auto, fp32, bf16, int8"):
        check_precision(bad)
    with pytest.raises(OptionsError, match="unknown precision"):
        get_model("fake", "/tmp", precision=bad)


def test_cli_rejects_an_unknown_precision_with_exit_2():
    from assistant.cli.main import cli

    result = CliRunner().invoke(cli, ["--precision", "fp8", "models"])
    assert result.exit_code == 2 and "fp8" in result.output


@pytest.mark.parametrize("precision, linear", [("fp32", "torch.nn.modules.linear"),
                                               ("bf16", "torch.nn.modules.linear"),
                                               ("int8", "assistant.models.int8")])
def test_the_model_loads_in_the_precision_asked_for(precision, linear):
    import torch

    tokenizer = train_tokenizer()
    model = HFChatModel(model_name="tiny", kind="causal", device="cpu", precision=precision,
                        options={"max_new_tokens": 4},
                        loader=loader_for(tiny_llama(tokenizer), tokenizer))
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

