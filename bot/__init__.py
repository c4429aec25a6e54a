"""The briefbot core: pipeline, topic pack, commands, digests, alerts, scheduler, CLI."""

from bot.compiled import use_sources_if_needed

use_sources_if_needed()
