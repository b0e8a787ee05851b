"""Test-wide setup: two forced CPU devices so that pmap paths run on this machine."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
