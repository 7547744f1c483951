"""Training: SFT warm start and reinforcement fine-tuning (GRPO), recipes and run records."""
