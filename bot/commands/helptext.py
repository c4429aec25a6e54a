"""Usage lines and descriptions of every command, for `/brief help` and for usage notices."""

from __future__ import annotations

from bot.messages import Help, HelpEntry

USAGE = {
    "claim": "/claim <what to look up>, e.g. /claim 350k H100s",
    "subscribe": '/brief subscribe <theme-id | "phrase"> [dm|here]',
    "unsubscribe": '/brief unsubscribe <theme-id | "phrase" | subscription number>',
    "subscriptions": "/brief subscriptions",
    "themes": "/brief themes",
    "digest": (
        "/brief digest [now | schedule HH:MM [Area/City] [mon-fri|daily|mon,wed,fri]"
        " | empty line|skip | off]"
    ),
    "digest empty": "/brief digest empty line|skip",
    "digest schedule": "/brief digest schedule HH:MM [Area/City] [mon-fri|daily|mon,wed,fri]",
    "feeds": "/brief feeds [list | add URL | remove URL]",
    "help": "/brief help",
    "brief": "/brief <subscribe|unsubscribe|subscriptions|themes|digest|feeds|help> ...",
}

INTRO = (
    "I keep this team briefed on Meta's AI work: a daily digest per channel, "
    "lookups of tracked claims, and alerts on the themes or phrases you follow."
)

_ENTRIES = (
    HelpEntry(
        usage=USAGE["claim"],
        description="Show the tracked claims that match: who said what, when, and newer coverage.",
    ),
    HelpEntry(
        usage=USAGE["subscribe"],
        description="Get alerts on new coverage of a theme or a quoted phrase, "
        "by direct message (dm, the default) or in this channel (here).",
    ),
    HelpEntry(
        usage=USAGE["unsubscribe"],
        description="Stop one of your alerts.",
    ),
    HelpEntry(usage=USAGE["subscriptions"], description="List your alerts with their numbers."),
    HelpEntry(usage=USAGE["themes"], description="List the themes you can follow."),
    HelpEntry(usage="/brief digest", description="Show this channel's digest schedule."),
    HelpEntry(usage="/brief digest now", description="Post the digest of the last day now."),
    HelpEntry(
        usage=USAGE["digest schedule"],
        description="Post a digest here every day (or on the days given) at that local time.",
        admin_only=True,
    ),
    HelpEntry(
        usage=USAGE["digest empty"],
        description="On a day without news: post a short line, or nothing.",
        admin_only=True,
    ),
    HelpEntry(
        usage="/brief digest off", description="Stop this channel's digest.", admin_only=True
    ),
    HelpEntry(
        usage=USAGE["feeds"],
        description="Show, add or remove the news feeds the bot reads.",
        admin_only=True,
    ),
    HelpEntry(usage=USAGE["help"], description="This list."),
)


def help_message() -> Help:
    return Help(entries=_ENTRIES, intro=INTRO)
