"""Example LFs for YouTube comment spam (labels ``ham``, ``spam``), written for labelloop.

Copy this file into a workspace's ``lfs/`` folder. ``RULES`` holds the keyword and regex rules
as the spec dicts ``labelloop lf add-rule`` and the UI store; the loader ignores it, the worked
example in ``docs/weak_supervision.md`` turns it into rules with ``rule_from_spec``.
"""

from weak_supervision import ABSTAIN, labeling_function

RULES = [
    {
        # Calls to action that nobody writes about the video itself.
        "kind": "keyword",
        "name": "kw_self_promotion",
        "label": "spam",
        "keywords": [
            "my channel",
            "my videos",
            "my video",
            "my music",
            "my page",
            "my playlist",
            "my new song",
            "my cover",
        ],
    },
    {
        "kind": "keyword",
        "name": "kw_subscribe",
        "label": "spam",
        "keywords": ["subscribe", "subscribers", "sub to", "sub me", "sub back", "subs", "sub4sub"],
    },
    {
        # Engagement bait and pointers to other networks.
        "kind": "keyword",
        "name": "kw_like_and_share",
        "label": "spam",
        "keywords": [
            "like this comment",
            "thumbs up if",
            "share this",
            "share on",
            "instagram",
            "facebook",
            "twitter",
        ],
    },
    {
        "kind": "keyword",
        "name": "kw_check_out",
        "label": "spam",
        "keywords": ["check out", "check it out", "check my", "checking my", "visit", "follow me"],
    },
    {
        "kind": "keyword",
        "name": "kw_money",
        "label": "spam",
        "keywords": ["money", "earn", "free", "gift card", "giftcard", "prize", "cash", "win"],
    },
    {
        # Links of any kind: full URLs, bare domains, YouTube watch ids.
        "kind": "regex",
        "name": "re_link",
        "label": "spam",
        "pattern": r"https?://|www\.|\.(?:com|net|org|ly)\b|watch\?v=",
    },
    {
        # Talk about the song, the singer or the view counter: how fans comment.
        "kind": "keyword",
        "name": "kw_about_the_video",
        "label": "ham",
        "keywords": ["song", "songs", "billion", "views", "dance", "voice", "lyrics", "beat"],
    },
]

_PROMOTION_WORDS = ("channel", "subscribe", "check", "http", "www", "video", "please", "plz")


@labeling_function()
def short_comment(row):
    # Short comments without a call to action are reactions ("love it", "2015 anyone?").
    words = row.text.split()
    if len(words) <= 5 and not any(w in row.text.lower() for w in _PROMOTION_WORDS):
        return "ham"
    return ABSTAIN


@labeling_function(resources={"fan_words": ("love", "best", "rock", "amazing", "awesome")})
def fan_praise(row, fan_words):
    # Praise ("I love this", "best rapper ever") in a comment of ordinary length, with no link.
    text = row.text.lower()
    if "http" in text or len(text) > 150:
        return ABSTAIN
    return "ham" if any(word in text for word in fan_words) else ABSTAIN


@labeling_function()
def shouting_request(row):
    # Spammers shout and plead: a long comment mostly in capitals asking for something.
    letters = [c for c in row.text if c.isalpha()]
    if len(letters) < 30:
        return ABSTAIN
    upper_share = sum(c.isupper() for c in letters) / len(letters)
    asks = any(w in row.text.lower() for w in ("please", "plz", "pls", "help me", "like this"))
    return "spam" if upper_share > 0.6 and asks else ABSTAIN


@labeling_function()
def long_pitch(row):
    # Long comments introducing the writer ("I'm a 19 year old singer...") are pitches.
    text = row.text.lower()
    if len(text) > 200 and any(w in text for w in ("i'm a", "i am a", "&#39;m a", "my name")):
        return "spam"
    return ABSTAIN
