"""The notebooks' Jupyter kernel for tests that run them (papermill, Voila)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

KERNEL = "salesproc"


def ensure_kernel() -> str:
    """Register the 'salesproc' kernel for this Python, as `make test` does, if it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL
    except NoSuchKernel:
        pass
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                    "--display-name", "Python (salesproc)"], check=True, capture_output=True, timeout=60)
    return KERNEL
