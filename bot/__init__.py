"""The briefbot core: pipeline, topic pack, commands, digests, alerts, scheduler, CLI."""
