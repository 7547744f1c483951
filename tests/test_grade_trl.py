"""The reward adapter inside a real TRL ``GRPOTrainer`` (tiny Llama + tokenizer built here, CPU)."""

from __future__ import annotations

import os

import pytest

from genedx.answer_format import format_answer, format_instructions
from genedx.grade import make_reward

GENES = ["SCN1A", "TBX5", "CRYAB"]


def _tiny_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [format_answer(GENES, "seizures fever heart cataract"), format_instructions(),
              "user: assistant: Symptoms present: Seizure Fever Cataract Ventricular septal defect"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"<[^>]+>|[,.:]|\s+"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # the isolated pieces keep their spaces: decode = concatenation
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[BOS]", "[EOS]"]))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]",
                                 eos_token="[EOS]")
    hf.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                        "{% if add_generation_prompt %}assistant: {% endif %}")
    return hf


@pytest.mark.slow
def test_reward_inside_grpo_trainer(tmp_path):
    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.manual_seed(0)
    tok = _tiny_tokenizer()
    assert tok.decode(tok("<answer>SCN1A, TBX5</answer>")["input_ids"]) == "<answer>SCN1A, TBX5</answer>"
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    rows = [{"prompt": [{"role": "user", "content": f"Symptoms present: {s}."}], "correct_answer": g}
            for s, g in [("Seizure", "SCN1A"), ("Ventricular septal defect", "TBX5"), ("Cataract", "CRYAB"),
                         ("Fever", "SCN1A")]]

    reward = make_reward()
    calls = []

    def spy(completions, correct_answer=None, **kwargs):
        out = reward(completions, correct_answer=correct_answer, **kwargs)
        calls.append((completions, correct_answer, out))
        return out
    spy.__name__ = reward.__name__

    args = GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, fp16=False, report_to=[],
                      per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=2,
                      learning_rate=1e-3, logging_steps=1, save_strategy="no", disable_tqdm=True,
                      dataloader_num_workers=0, seed=0)
    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[spy], args=args,
                          train_dataset=Dataset.from_list(rows))
    trainer.train()

    assert calls, "the reward was never called"
    for completions, answers, scores in calls:
        assert isinstance(completions[0], list) and completions[0][0]["role"] == "assistant"  # chat completions
        assert len(answers) == len(completions) and set(answers) <= set(GENES)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    logged = [h for h in trainer.state.log_history if "rewards/genedx_reward/mean" in h]
    assert len(logged) >= 1 and all("reward" in h for h in logged)
