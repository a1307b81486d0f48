"""Model files and ordinary repository files for the CI and integration tests.

Honest models are written by the real libraries; hostile ones are built byte by byte and only
ever run `echo modelaudit-test` if something loaded them by mistake.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests import builders


def write_honest_models(root: Path, *, all_formats: bool = False) -> list[Path]:
    """A torch checkpoint and a NumPy array; with all_formats also safetensors and HDF5 (h5py)."""
    import numpy as np
    import torch

    root.mkdir(parents=True, exist_ok=True)
    torch.save({"layer.weight": torch.zeros(4, 3), "layer.bias": torch.zeros(4)}, root / "classifier.pt")
    np.save(root / "embeddings.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    if all_formats:
        import h5py
        from safetensors.numpy import save_file

        save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(root / "adapter.safetensors"))
        with h5py.File(root / "features.h5", "w") as fh:
            fh["weights"] = np.zeros(3)
    return sorted(p for p in root.iterdir() if p.is_file())


def write_malicious_pickle(path: Path) -> Path:
    """A pickle whose loading calls os.system (spelled posix.system, as CPython writes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(builders.payload(protocol=2))
    return path


def write_warning_only_pickle(path: Path) -> Path:
    """A pickle naming a class outside every allowlist: a warning, nothing critical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(builders.reduce_pickle("acme_models.layers", "Dense", protocol=2))
    return path


# Files every repository has, which a pre-commit hook matching json/yaml/yml sees on each commit.
ORDINARY_FILES = {
    "package.json": json.dumps({"name": "web", "version": "1.0.0", "private": True,
                                "scripts": {"build": "tsc -p .", "postinstall": "node scripts/setup.js"},
                                "dependencies": {"react": "^18.2.0"}}, indent=2),
    "tsconfig.json": '{\n  // comments are allowed here\n  "compilerOptions": {"target": "ES2022", "strict": true,},\n'
                     '  "include": ["src/**/*"]\n}\n',
    ".vscode/launch.json": '{\n  "version": "0.2.0",\n  "configurations": [{"type": "debugpy", "request": "launch",'
                           ' "program": "${file}"}]\n}\n',
    ".devcontainer/devcontainer.json": json.dumps({"image": "mcr.microsoft.com/devcontainers/python:3.12",
                                                   "postCreateCommand": "pip install -e '.[dev]'"}),
    "config.json": json.dumps({"server": {"host": "0.0.0.0", "port": 8080}, "command": "python -m app"}),
    "renovate.json": '{"extends": ["config:recommended"]}\n',
    ".github/workflows/ci.yml": "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
                                "    steps:\n      - uses: actions/checkout@v4\n      - run: |\n"
                                "          pip install -e '.[test]'\n"
                                "          curl -sSL https://example.com/install.sh | bash\n",
    "docker-compose.yml": "services:\n  web:\n    image: nginx:1.25\n"
                          "    command: [\"nginx\", \"-g\", \"daemon off;\"]\n  worker:\n    build: .\n"
                          "    command: python -c \"import os; os.system('migrate')\"\n",
    ".gitlab-ci.yml": "test:\n  image: python:3.12\n  script:\n    - pip install -r requirements.txt\n    - pytest\n",
    "mkdocs.yml": "site_name: Docs\nmarkdown_extensions:\n  - pymdownx.emoji:\n"
                  "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
    "k8s/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n"
                           "    spec:\n      containers:\n        - name: api\n"
                           "          command: [\"/bin/sh\", \"-c\"]\n          args: [\"exec gunicorn app:app\"]\n"
                           "---\napiVersion: v1\nkind: ConfigMap\n"
                           "metadata: {name: cfg}\ndata:\n  start.sh: |\n    #!/bin/sh\n    exec python -m app\n",
    "environment.yml": "name: ml\nchannels: [conda-forge]\ndependencies: [python=3.11, pytorch, pip]\n",
    "models/config.json": json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 768,
                                      "vocab_size": 30522, "transformers_version": "4.44.0"}),
    "models/tokenizer_config.json": json.dumps({
        "tokenizer_class": "LlamaTokenizer", "eos_token": "</s>",
        "chat_template": "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + eos_token }}"
                         "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"}),
    "empty.json": "",
}
# Written by Windows tools: a UTF-16 JSON file and a YAML file in the Windows-1252 code page.
ORDINARY_BINARY_FILES = {
    "settings.json": '{"theme": "dark", "fontSize": 12}\r\n'.encode("utf-16"),
    "deploy/values.yaml": "# Configuración del servidor\nowner: José Muñoz\nreplicas: 2\n".encode("cp1252"),
}


def write_ordinary_files(root: Path) -> list[Path]:
    written = []
    for name, text in ORDINARY_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
        written.append(root / name)
    for name, data in ORDINARY_BINARY_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        written.append(root / name)
    return written
