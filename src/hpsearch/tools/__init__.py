"""The tools around a search: the `hpsearch` command (`cli`), `doctor`, `report`, `dashboard` and the
`demo`; internal but for their command lines."""
