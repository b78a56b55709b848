"""The layering's promises that import-linter (pyproject.toml, `make lint`) cannot see: every
channel has a builder, and a channel's client library is loaded only when it is configured."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import get_args

from notifiers import CHANNELS
from notifiers.base import ChannelName
from notifiers.settings import ChannelSettings


def test_every_channel_has_a_builder_in_the_registry() -> None:
    assert list(CHANNELS) == list(get_args(ChannelName))


def test_a_channel_has_its_settings_beside_it() -> None:
    # Each channel that needs settings has them in ChannelSettings under its own name; the
    # inbox needs none (the broker connection, mqtt, is not a channel).
    assert set(ChannelSettings.model_fields) - {"mqtt"} == set(CHANNELS) - {"inbox"}


def test_the_config_and_unconfigured_channels_load_no_client_library() -> None:
    # twilio alone costs ~16 MB: a daemon without SMS must not carry it.
    code = textwrap.dedent(
        """
        import sys
        from monitor.alerting.channels import Channels
        from monitor.config import Config
        channels = Channels.build(Config().channels)
        assert list(channels.notifiers) == ["inbox"], channels.notifiers
        loaded = {"twilio", "aiosmtplib", "aiomqtt"} & {m.split(".")[0] for m in sys.modules}
        print(sorted(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
