"""Language models for genedx: build a small domain model from scratch (:mod:`.build`), load any local
Hugging Face causal LM with an optional PEFT adapter (:mod:`.load`), prompts in closed / retrieval
mode and SFT targets (:mod:`.prompts`), the model behind the predictor interface (:mod:`.predictor`)
and `genedx eval` (:mod:`.evaluate`). Submodules import torch/transformers lazily where they can, so
``import genedx.model`` stays cheap."""
