"""Train step: full fine-tuning, LoRA or QLoRA with Hugging Face transformers + peft.

Runs under the SageMaker training toolkit (hyperparameters arrive as ``--name value``; channels
``train`` = the prepare step's output, ``model`` = the base model in Hugging Face layout) and
locally on CPU in the tests. Writes to ``--output_dir`` (``/opt/ml/model``):
- ``adapter/`` (LoRA/QLoRA adapter weights + config, reloadable with ``PeftModel``),
- the merged model (``config.json``, ``*.safetensors``, tokenizer, ``generation_config.json``) at
  the top level, the layout TGI (``HF_MODEL_ID=/opt/ml/model``) and DJL-LMI load; full tuning
  always writes it, adapter strategies when ``--merge_weights true``,
- ``train_report.json`` (loss history, parameters, hardware).
Spot training: checkpoints go to ``--checkpoint_dir`` (synced to S3 by SageMaker) and a restarted
job resumes from the newest one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from ._io import StepFailed, read_jsonl, run_step, write_json
from .modeling import best_dtype, encode_example, has_cuda, has_neuron, load_causal_lm, load_tokenizer, world_size

STRATEGIES = ("full", "lora", "qlora")


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(description="fine-tune a causal language model")
    p.add_argument("--train_dir", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--model_dir", default=env.get("SM_CHANNEL_MODEL", "/opt/ml/input/data/model"))
    p.add_argument("--output_dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--checkpoint_dir", default="/opt/ml/checkpoints")
    p.add_argument("--strategy", choices=STRATEGIES, default="lora")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--learning_rate", type=float, default=2e-4)
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--lora_alpha", type=int, default=32)
    p.add_argument("--lora_dropout", type=float, default=0.05)
    p.add_argument("--lora_target_modules", default="all-linear")
    p.add_argument("--max_length", type=int, default=1024)
    p.add_argument("--per_device_batch_size", type=int, default=4)
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--gradient_checkpointing", type=_bool, default=True)
    p.add_argument("--merge_weights", type=_bool, default=True)
    p.add_argument("--fsdp", default="", help="'full_shard auto_wrap' shards the model (torchrun, full tuning)")
    p.add_argument("--max_steps", type=int, default=-1)
    p.add_argument("--logging_steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--use_cpu", type=_bool, default=False)
    return p


def validate_args(args: argparse.Namespace) -> None:
    if args.strategy in ("lora", "qlora"):
        if args.lora_r < 1:
            raise StepFailed(f"lora_r must be at least 1, got {args.lora_r}")
        if args.lora_alpha < 1:
            raise StepFailed(f"lora_alpha must be at least 1, got {args.lora_alpha}")
        if not 0 <= args.lora_dropout < 1:
            raise StepFailed(f"lora_dropout must be in [0, 1), got {args.lora_dropout}")
    if args.learning_rate <= 0 or not math.isfinite(args.learning_rate):
        raise StepFailed(f"learning_rate must be a positive number, got {args.learning_rate}")
    if args.epochs <= 0:
        raise StepFailed(f"epochs must be positive, got {args.epochs}")
    if args.strategy == "qlora" and (args.use_cpu or not has_cuda()):
        raise StepFailed("strategy qlora needs a CUDA GPU (4-bit bitsandbytes); use lora on CPU or Trainium")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size())))
    if args.strategy == "qlora" and world_size() > local:
        raise StepFailed(
            f"strategy qlora runs on one instance only; this run has {world_size() // max(local, 1)} instances "
            "(TrainingInstanceCount): use 1, or strategy lora for several instances"
        )


class TokenizedRows:
    """A list-backed torch dataset of encoded examples."""

    def __init__(self, rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> None:
        self.items = [encode_example(tokenizer, r["prompt"], r["completion"], max_length) for r in rows]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


def _trainer_classes():
    if has_neuron():
        # The Neuron training image ships optimum-neuron; its Trainer compiles for Trainium (XLA).
        from optimum.neuron import NeuronTrainer, NeuronTrainingArguments

        return NeuronTrainer, NeuronTrainingArguments
    from transformers import Trainer, TrainingArguments

    return Trainer, TrainingArguments


def _wrap_peft(model: Any, args: argparse.Namespace) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if args.strategy == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    targets: Any = args.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def mlflow_reporting() -> list[str]:
    """``["mlflow"]`` when a tracking server is configured and the image can reach it, else ``[]``.

    A SageMaker managed server (an ARN) needs the ``sagemaker-mlflow`` plugin for SigV4; an image
    without it still trains, with a warning, rather than failing a run over its metrics.
    """
    import importlib.util

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return []
    needed = ["mlflow"] + (["sagemaker_mlflow"] if uri.startswith("arn:") else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        print(f"WARNING: MLFLOW_TRACKING_URI is set but {missing} is not installed in this image; not logging to MLflow")
        return []
    return ["mlflow"]


def _latest_checkpoint(checkpoint_dir: Path) -> str | None:
    found = sorted(checkpoint_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    return str(found[-1]) if found else None


def train(args: argparse.Namespace) -> dict[str, Any]:
    validate_args(args)
    import torch
    from transformers import DataCollatorForSeq2Seq, set_seed

    set_seed(args.seed)
    train_dir, model_dir, output_dir = Path(args.train_dir), Path(args.model_dir), Path(args.output_dir)
    if not (train_dir / "train.jsonl").is_file():
        raise StepFailed(f"no train.jsonl in {train_dir}: the prepare step's output is missing")
    if not (model_dir / "config.json").is_file():
        raise StepFailed(f"no config.json in {model_dir}: the base model must be in Hugging Face layout")
    train_rows = read_jsonl(train_dir / "train.jsonl")
    if not train_rows:
        raise StepFailed("train.jsonl is empty: nothing to train on")
    val_path = train_dir / "validation.jsonl"
    val_rows = read_jsonl(val_path) if val_path.is_file() else []

    tokenizer = load_tokenizer(model_dir)
    use_cpu = args.use_cpu or not (has_cuda() or has_neuron())
    dtype = torch.float32 if use_cpu else best_dtype()
    quantization = None
    if args.strategy == "qlora":
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    model = load_causal_lm(model_dir, dtype=dtype, quantization_config=quantization)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if args.strategy in ("lora", "qlora"):
        model = _wrap_peft(model, args)
        if args.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed frozen embeddings need grads to flow

    trainer_cls, args_cls = _trainer_classes()
    checkpoint_dir = Path(args.checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    report_to = mlflow_reporting()
    training_args = args_cls(
        output_dir=str(checkpoint_dir),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_batch_size,
        per_device_eval_batch_size=args.per_device_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        bf16=dtype == torch.bfloat16 and not use_cpu,
        logging_steps=args.logging_steps,
        eval_strategy="epoch" if val_rows else "no",
        save_strategy="epoch",
        save_total_limit=2,
        report_to=report_to,
        seed=args.seed,
        use_cpu=use_cpu,
        fsdp=args.fsdp or "",
        lr_scheduler_type="constant" if args.max_steps > 0 else "linear",
        # LoRA freezes the base: DDP must not search the graph for parameters without gradients.
        ddp_find_unused_parameters=False if args.strategy != "full" else None,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = trainer_cls(
        model=model,
        args=training_args,
        train_dataset=TokenizedRows(train_rows, tokenizer, args.max_length),
        eval_dataset=TokenizedRows(val_rows, tokenizer, args.max_length) if val_rows else None,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
    )
    result = trainer.train(resume_from_checkpoint=_latest_checkpoint(checkpoint_dir))
    # Runs shorter than logging_steps log no step loss: fall back to the run's mean loss.
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry] or [result.training_loss]
    if not losses or not all(math.isfinite(x) for x in losses):
        raise StepFailed(f"training loss is not finite: {losses[-5:]}; lower the learning rate or check the data")

    output_dir.mkdir(parents=True, exist_ok=True)
    if args.strategy == "full":
        # Every rank calls save_model: under FSDP it gathers the shards; only rank 0 writes.
        trainer.save_model(str(output_dir))
    if not trainer.is_world_process_zero():
        return {}
    if args.strategy == "full":
        tokenizer.save_pretrained(str(output_dir))
    else:
        save_adapter_and_merge(trainer.model, tokenizer, model_dir, output_dir, merge=args.merge_weights, dtype=dtype)
    report = {
        "strategy": args.strategy,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout} if args.strategy != "full" else None,
        "train_records": len(train_rows),
        "validation_records": len(val_rows),
        "global_steps": result.global_step,
        "loss_history": losses,
        "final_train_loss": losses[-1],
        "device": "neuron" if has_neuron() else ("cpu" if use_cpu else "cuda"),
        "world_size": world_size(),
        "dtype": str(dtype).replace("torch.", ""),
    }
    write_json(output_dir / "train_report.json", report)
    return report


def save_adapter_and_merge(model: Any, tokenizer: Any, base_dir: Path, output_dir: Path, *, merge: bool, dtype=None) -> None:
    """Save the adapter under ``adapter/``; with ``merge``, fold it into full-precision base weights.

    QLoRA trains against 4-bit weights, so merging reloads the base in bf16/fp32 rather than
    folding into quantised tensors (which would lose precision).
    """
    adapter_dir = output_dir / "adapter"
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    if not merge:
        return
    from peft import PeftModel

    base = load_causal_lm(base_dir, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(output_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(output_dir))


def main(argv: list[str] | None = None) -> None:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {unknown}")  # the toolkit may pass its own settings
    print(json.dumps(train(args), indent=2))


if __name__ == "__main__":
    raise SystemExit(run_step(main))
