"""The search backends: each adapts one library (optuna, SigOpt, Ray Tune, W&B) to `backends.base`'s
interface, and imports that library only when used."""
