"""Terraform: the one place that turns a VM request into Terraform files, and checks a directory Atlantis plans.

- `spec`: the plain description of a request (`MachineSpec`, `TemplateSpec`) and why one cannot be cloned.
- `hcl`: HCL literals, the only way a value reaches a rendered file.
- `hcl_reader`: HCL documents as python-hcl2 reads them (blocks, labels, variable references).
- `settings`: the rendering settings from Django settings, checked once; the backend block and per-VM state key.
- `templates`: the files of `terraform_templates`, and the standalone templates cut into pieces.
- `render`: a `MachineSpec` into its directory's files, and their hash.
- `structure`: what a directory must hold before Atlantis can plan it, checked and completed.
- `cli`: `structure` on the command line (console script, pre-commit hook, management command), no Django settings.

Nothing here imports models: callers build a `MachineSpec` from whatever they store.
"""
