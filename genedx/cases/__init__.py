"""Cases: the one case model, readers (phenopackets, JSONL), the simulator, splits and the RFT export."""
