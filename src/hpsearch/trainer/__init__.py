"""Internal: the 🤗 Transformers integration behind `hpsearch.transformers`: one trial of a Trainer
(`runner`), its arguments, its rung evaluations and pauses, its tracking runs, its recipe for other processes."""
