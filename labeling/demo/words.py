"""Seeded generator of labelloop's synthetic customer-support demo data set.
Regenerate the committed files with ``python -m labeling.demo.words datasets/demo``."""

from __future__ import annotations

import argparse
import csv
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("billing", "technical", "shipping", "account", "feedback")
DEFAULT_SEED = 20261123
CHANNELS: tuple[str, ...] = ("email", "chat", "web_form", "app_review")

# Target share of each class in pool and gold (percent, in the order of LABELS).
_CLASS_WEIGHTS: tuple[int, ...] = (22, 27, 20, 18, 13)

# Channel weights per class, in the order of CHANNELS.
_CHANNEL_WEIGHTS: dict[str, tuple[int, ...]] = {
    "billing": (40, 25, 25, 10),
    "technical": (25, 35, 15, 25),
    "shipping": (40, 30, 25, 5),
    "account": (30, 35, 25, 10),
    "feedback": (15, 15, 15, 55),
}

_AMBIGUOUS_RATE = 0.08
_DUPLICATE_RATE = 0.01
_SHORT_RATE = 0.045
_FOREIGN_RATE = 0.015

# ---------------------------------------------------------------------------
# Vocabulary for the slots of the templates.
# ---------------------------------------------------------------------------

_APPS = (
    "Nimbus Notes", "Nimbus Drive", "Nimbus Photo", "the desktop app", "the mobile app",
    "the web app", "the browser extension", "the Android app", "the iOS app",
)
# Singular nouns that start with a consonant, so "a {item}" always reads right.
_ITEMS = (
    "standing desk", "coffee grinder", "phone case", "yoga mat", "USB-C hub", "backpack",
    "desk lamp", "water bottle", "mechanical keyboard", "webcam", "monitor stand",
    "smart plug", "laptop sleeve", "bluetooth speaker", "desk chair", "portable SSD",
    "kettle", "wall charger", "headset", "blender",
)
# Wireless devices that pair, charge and get firmware updates.
_GADGETS = (
    "bluetooth speaker", "smart watch", "wireless mouse", "fitness tracker", "headset",
    "wireless keyboard", "e-reader", "baby monitor",
)
_PLANS = ("Plus", "Pro", "Family", "Business", "Premium", "Starter")
_DEVICES = (
    "iPhone 13", "iPhone 15", "Pixel 7", "Galaxy S22", "Windows 11 laptop", "MacBook Air",
    "iPad", "Chromebook", "Android tablet", "work PC", "old Windows 10 machine", "Mac",
)
_ERRORS = (
    "error 502", "error 500", "ERR_SYNC_TIMEOUT", "error code 0x80070005",
    '"Something went wrong"', '"Unable to connect to server"', "error E-1043",
    "a 404 page", '"Session expired"', "a blank white screen",
)
_ACTIONS = (
    "log in", "upload a photo", "export my notes", "save a file", "open settings",
    "share a folder", "print a page", "attach a document", "restore a backup",
    "open a shared link", "pay for my order", "edit a note",
)
_FEATURES = (
    "export to PDF", "dark mode", "search", "sync", "notifications", "the calendar view",
    "file upload", "sharing", "offline mode", "the home screen widget", "tags", "auto backup",
)
_CARRIERS = ("UPS", "DHL", "FedEx", "USPS", "Royal Mail", "DPD", "the courier", "the post office")
_COUNTRIES = (
    "Canada", "Germany", "Australia", "Ireland", "Mexico", "Japan", "Norway", "Spain",
    "Brazil", "India", "Poland", "New Zealand",
)
_NAMES = (
    "Maria", "Tom", "Priya", "Kenji", "Olu", "Sam", "Anna", "Luis", "Fatima", "Jonas",
    "Grace", "Mehmet", "Chloe", "Ravi", "Ines", "Pete", "Dana", "Yuki", "Ahmed", "Lena",
)
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_PROMO_CODES = ("SAVE20", "WELCOME10", "BLACKFRIDAY", "SPRING15", "FREESHIP", "STUDENT25")
_USERNAMES = ("mkowalski", "tom_b", "priya.r", "kenji88", "sunny_days", "dk1990", "lena.m")
_PRICES = (4, 7, 9, 12, 14, 19, 24, 29, 39, 49, 59, 79, 99, 119, 149)
_EMOJI_NEGATIVE = ("😡", "😤", "🙄", "😠", "😭", "😞", "😕", "🙏", "😩")
_EMOJI_POSITIVE = ("👍", "❤️", "🙂", "😍", "🎉", "⭐")
_EMOJI_NEUTRAL = ("🙏", "🤔", "🙂")


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


class _Slots:
    """Fills ``{slot}`` placeholders; a slot repeated within one message keeps its value."""

    _PATTERN = re.compile(r"\{(\w+)\}")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cache: dict[str, str] = {}
        self.currency = ""
        self.price = 0
        self.makers: dict[str, Callable[[], str]] = {
            "app": lambda: rng.choice(_APPS),
            "item": lambda: rng.choice(_ITEMS),
            "item2": self._item2,
            "gadget": lambda: rng.choice(_GADGETS),
            "plan": lambda: rng.choice(_PLANS),
            "device": lambda: rng.choice(_DEVICES),
            "error": lambda: rng.choice(_ERRORS),
            "action": lambda: rng.choice(_ACTIONS),
            "feature": lambda: rng.choice(_FEATURES),
            "carrier": lambda: rng.choice(_CARRIERS),
            "country": lambda: rng.choice(_COUNTRIES),
            "name": lambda: rng.choice(_NAMES),
            "month": lambda: rng.choice(_MONTHS),
            "code": lambda: rng.choice(_PROMO_CODES),
            "user": lambda: rng.choice(_USERNAMES),
            "n": lambda: str(rng.randint(3, 21)),
            "years": lambda: str(rng.randint(2, 9)),
            "year": lambda: str(rng.randint(2014, 2022)),
            "last4": lambda: f"{rng.randint(0, 9999):04d}",
            "version": lambda: f"{rng.randint(3, 6)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}",
            "order": self._order,
            "tracking": self._tracking,
            "amount": lambda: self._amount(0),
            "amount_more": lambda: self._amount(1),
            "amount_less": lambda: self._amount(-1),
            "date": self._date,
            "deadline": self._deadline,
            "email": self._email,
        }

    def fill(self, template: str) -> str:
        return self._PATTERN.sub(self._replace, template)

    def _replace(self, match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in self.cache:
            self.cache[key] = self.makers[key]()
        return self.cache[key]

    def _item2(self) -> str:
        first = self.cache.get("item", "")
        while True:
            other = self.rng.choice(_ITEMS)
            if other != first:
                return other

    def _order(self) -> str:
        style = self.rng.randrange(4)
        if style == 0:
            return f"#{self.rng.randint(1000000, 9999999)}"
        if style == 1:
            return f"NB-{self.rng.randint(100000, 999999)}"
        if style == 2:
            return str(self.rng.randint(1000000, 9999999))
        return f"#NB{self.rng.randint(10000, 99999)}"

    def _tracking(self) -> str:
        if self.rng.random() < 0.5:
            return "".join(str(self.rng.randrange(10)) for _ in range(12))
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        head = "".join(self.rng.choice(letters) for _ in range(2))
        return f"{head}{self.rng.randint(100000000, 999999999)}GB"

    def _amount(self, direction: int) -> str:
        """A price; ``direction`` 1 or -1 gives one above or below the message's first price."""
        if not self.currency:
            self.currency = ("$", "$", "$", "€", "€", "£", "USD")[self.rng.randrange(7)]
        if direction == 0 or not self.price:
            index = self.rng.randrange(1, len(_PRICES) - 1)
        else:
            index = _PRICES.index(self.price)
            index = min(len(_PRICES) - 1, max(0, index + direction * self.rng.randint(1, 3)))
        whole = _PRICES[index]
        if not self.price:
            self.price = whole
        cents = self.rng.choice(("99", "99", "00", "49", "95"))
        if self.currency == "USD":
            return f"{whole}.{cents} USD"
        if self.currency == "€" and self.rng.random() < 0.4:
            return f"€{whole},{cents}"
        return f"{self.currency}{whole}.{cents}"

    def _date(self) -> str:
        style = self.rng.randrange(8)
        if style == 0:
            return "yesterday"
        if style == 1:
            return f"last {self.rng.choice(_WEEKDAYS)}"
        if style == 2:
            return f"on {self.rng.choice(_MONTHS)} {self.rng.randint(1, 28)}"
        if style == 3:
            return f"on {self.rng.randint(1, 12)}/{self.rng.randint(1, 28)}"
        if style == 4:
            return f"{self.rng.choice(('two', 'three', 'four', 'five'))} days ago"
        if style == 5:
            return "this morning"
        if style == 6:
            return f"on the {_ordinal(self.rng.randint(1, 28))}"
        return "last week"

    def _deadline(self) -> str:
        style = self.rng.randrange(4)
        if style == 0:
            return self.rng.choice(_WEEKDAYS)
        if style == 1:
            return f"the {_ordinal(self.rng.randint(1, 28))}"
        if style == 2:
            return "next week"
        return "the weekend"

    def _email(self) -> str:
        name = self.cache.get("name") or self.rng.choice(_NAMES)
        return f"{name.lower()}{self.rng.randint(1, 99)}@example.com"


# ---------------------------------------------------------------------------
# Message templates. Each topic pairs core sentences with follow-up details that fit
# them. Keywords overlap between classes on purpose ("refund" also in shipping and
# feedback, "invoice" also in technical, "password" also in technical, ...).
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Topic:
    cores: tuple[str, ...]
    details: tuple[str, ...]
    negative: bool = True
    rated: bool = True  # whether an app review of this topic may start with a rating


_TOPICS: dict[str, tuple[_Topic, ...]] = {
    "billing": (
        _Topic(
            cores=(
                "I was charged twice for my {plan} subscription {date}.",
                "Why did my card get charged {amount} {date}? I didn't buy anything.",
                "There is a double charge of {amount} on my statement from you.",
                "The pending charge of {amount} from {date} is still on my card.",
                "My bank flagged a charge from you as suspicious, {amount}. Is this legit?",
                "I got a receipt for {amount} for something I never ordered.",
                "You charged me again after I cancelled the trial. I want that money back.",
                "Please stop billing me, I cancelled my subscription {date}.",
                "The annual renewal took {amount} from my account and I forgot to cancel. "
                "Any chance of a refund?",
                "Got charged {amount} in a currency I don't use, who pays the conversion fee?",
                "I'd love to know why my card was charged {amount} {date}.",
            ),
            details=(
                "My bank shows the charge as pending.", "The card ends in {last4}.",
                "I have the bank statement if you need it.",
                "This has happened two months in a row now.", "I never authorised this payment.",
                "I only have one account with you.",
            ),
        ),
        _Topic(
            cores=(
                "Can I get a refund for {app}? I cancelled during the free trial.",
                "Where is my refund? You said {n} days and it's been longer than that.",
                "I was promised a refund of {amount} for order {order} but nothing has come "
                "through.",
                "I'd like my money back for the {plan} upgrade, I clicked it by mistake.",
                "I returned the {item} {date} but the refund hasn't shown up on my card.",
                "Can I get the refund on my card instead of store credit for order {order}?",
            ),
            details=(
                "The order number is {order}.", "I was told it would take 5 to 7 business days.",
                "I cancelled within the first week.",
                "I already got the confirmation email for the refund.",
            ),
        ),
        _Topic(
            cores=(
                "I need a proper VAT invoice for order {order}, with our company name on it.",
                "My invoice for {month} says {amount} but my plan is only {amount_less} a month.",
                "Could you send me a copy of my last receipt? I need it for expenses.",
                "Your invoice lists the wrong billing address, can you reissue it?",
                "Tax was added twice on my invoice for order {order}.",
                "Where can I download invoices for the last {years} years?",
            ),
            details=(
                "Our company is based in {country}.", "I need it for my accountant by {deadline}.",
                "The order number is {order}.", "The account is under the name {name}.",
            ),
        ),
        _Topic(
            cores=(
                "Can I switch from monthly to annual billing and get the discount?",
                "The price of the {plan} plan went from {amount} to {amount_more} without any "
                "notice.",
                "Do you accept PayPal or only cards?",
                "Is there a student discount for the {plan} plan?",
                "Why am I paying for the {plan} plan when I downgraded last month?",
                "The promo code {code} didn't apply at checkout and I paid the full price.",
                "My payment keeps getting declined but the card works everywhere else.",
                "How do I update the credit card on file? The old one expired.",
                "Can you split the payment for order {order} across two cards?",
                "I paid with a gift card but it only took part of it and charged my card for "
                "the rest.",
                "How much is the {plan} plan per year, and is VAT included?",
            ),
            details=(
                "I'm on the {plan} plan, billed monthly.",
                "I've been a customer for {years} years.",
                "The card ends in {last4}.", "I tried two different cards.",
            ),
        ),
    ),
    "technical": (
        _Topic(
            cores=(
                "{app} crashes every time I open it on my {device}.",
                "The app won't sync between my phone and my laptop anymore.",
                "I keep getting {error} when I try to {action}.",
                "The {feature} feature is broken since the last update.",
                "The page just keeps loading and never finishes, tried two browsers.",
                "Notifications stopped working after I updated to version {version}.",
                "I can't upload files bigger than 10 MB, it just fails without a message.",
                "The checkout button does nothing when I click it, so I can't pay.",
                "Dark mode makes the text unreadable on my {device}.",
                "Search returns nothing even for notes I know exist.",
                "After the update all my settings were reset to default.",
                "The installer fails on my {device} with {error}.",
                "Videos won't play, I only get a black screen with sound.",
                "The invoice PDF won't open, it says the file is damaged.",
                "The password reset link opens {error}.",
                "The login page shows {error} for everyone in our office.",
                "{app} uses 100% CPU and my {device} gets really hot.",
                "My notes disappeared after the sync, can they be recovered?",
                "The {feature} option is greyed out for me.",
                "Keyboard shortcuts don't work in {app} on my {device}.",
                "The widget shows old data and never refreshes.",
                "I get logged out every few minutes in {app}, it's making it unusable.",
                "Photos upload sideways and I can't rotate them.",
                "When I try to {action} the app freezes and I have to force close it.",
                "The browser extension disappeared from my toolbar after a Chrome update.",
                "Since version {version} the app drains my battery in a couple of hours.",
                "{app} keeps crashing on startup since version {version}.",
                "The app crashes as soon as I try to {action}.",
                "Love the app, but the widget shows old data and never refreshes.",
                "I'd love to keep using {app} but it crashes whenever I rotate my {device}.",
            ),
            details=(
                "I already tried reinstalling.", "Restarting didn't help.",
                "It worked fine until last week.", "I'm on version {version}.",
                "I cleared the cache and it's still the same.",
                "It happens on wifi and on mobile data.", "Screenshot attached.",
                "This started after the latest update.", "Same problem on my other device.",
                "I logged out and back in, no change.",
            ),
        ),
        _Topic(
            cores=(
                "Is there a way to import my old notes from a CSV file?",
                "Is there an API for exporting data, or only the manual export?",
                "How do I set up sync between {app} and my {device}?",
                "Can {app} work offline? I travel a lot.",
                "Can I connect {app} to Google Calendar?",
                "What are the system requirements for {app}? Will it run on my {device}?",
            ),
            details=(
                "I couldn't find it in the help pages.", "I'm on version {version}.",
                "We're a team of {n} people using it.",
            ),
            rated=False,
        ),
        _Topic(
            cores=(
                "The {gadget} I bought won't pair with my {device}.",
                "The {gadget} I got doesn't turn on at all, even after charging it overnight.",
                "The {gadget} makes a loud clicking noise when it's running.",
                "The {gadget} gets really hot after a few minutes.",
                "The {gadget} keeps disconnecting every few minutes.",
                "The firmware update for the {gadget} failed halfway and now it's stuck.",
            ),
            details=(
                "It's less than a month old.", "I followed the manual step by step.",
                "I tried charging it with a different cable.", "I already did a factory reset.",
                "I bought it {date}.",
            ),
        ),
    ),
    "shipping": (
        _Topic(
            cores=(
                "Where is my order {order}? Tracking hasn't updated since {date}.",
                "Order {order} is late, it was supposed to arrive {date}.",
                "My order {order} still says processing after {n} days. When will it ship?",
                "The delivery window for order {order} keeps moving. Will it come before "
                "{deadline}?",
                "Tracking shows my package going back to the warehouse. Why?",
                "The tracking number you sent me doesn't work on the {carrier} website.",
                "The parcel is stuck in customs in {country}, what do I need to do?",
            ),
            details=(
                "I need it before {deadline}, it's a gift.", "The tracking number is {tracking}.",
                "It was shipped with {carrier}.", "The estimated delivery date has passed.",
                "I paid for express shipping.",
            ),
        ),
        _Topic(
            cores=(
                "My package was marked as delivered {date} but it's not here.",
                "{carrier} left a note saying they tried to deliver but I was home all day.",
                "My {item} was delivered to the wrong house, my neighbour has it apparently.",
            ),
            details=(
                "Nobody knocked or left a note.", "I already checked with my neighbours.",
                "The order number is {order}.", "It was shipped with {carrier}.",
            ),
        ),
        _Topic(
            cores=(
                "The box arrived crushed and the {item} inside is cracked.",
                "I received the wrong item. I ordered a {item} and got a {item2}.",
                "One item is missing from my order, I only got the {item}.",
                "I got a box with nothing inside except the packing slip.",
                "Please send a replacement {item}, the one I got came damaged in shipping.",
            ),
            details=(
                "I have photos of the box.", "The order number is {order}.",
                "I'd prefer a replacement over a refund.", "The outer box looked fine.",
            ),
        ),
        _Topic(
            cores=(
                "Can I change the delivery address for order {order}? I'm moving.",
                "How long does shipping to {country} usually take?",
                "Do you ship to {country}, and how much does it cost?",
                "Can I pick up my order somewhere instead of having it delivered?",
                "Can you combine my two orders into one shipment?",
                "Is express shipping available for the {item}?",
                "I need to return the {item}, how do I get a return label?",
                "I sent the {item} back two weeks ago, did you receive the return?",
                "Can I cancel order {order} before it ships? I ordered the wrong size.",
                "Your site says free shipping over $50 but I was charged for delivery.",
                "Still waiting on the refund for the package that got lost in transit.",
            ),
            details=(
                "The order number is {order}.", "I ordered it {date}.",
                "I'm happy to pay extra for faster shipping.",
            ),
        ),
    ),
    "account": (
        _Topic(
            cores=(
                "I can't log in, it says my password is wrong but I just reset it.",
                "I got locked out after too many login attempts.",
                "The two-factor codes aren't arriving on my new phone number.",
                "I forgot my password and the reset email goes to an address I can't access.",
                "I changed my email and now I can't log in with either address.",
                "The security questions on my account aren't accepting my answers.",
                "I never got the verification email when I signed up.",
            ),
            details=(
                "I don't have access to my old email anymore.",
                "I've tried resetting it three times.", "My username is {user}.",
                "I checked the spam folder too.", "I originally signed up with Google.",
            ),
        ),
        _Topic(
            cores=(
                "How do I change the email address on my account?",
                "Can I change my username? It still shows {user}.",
                "How do I change the phone number on my profile?",
                "My name is spelled wrong on my profile and I can't edit it.",
                "Can I transfer my account to my work email?",
                "Please unsubscribe me from all marketing emails.",
                "I signed up with Google and now I want to use a normal password instead.",
                "How do I remove a device that's still logged into my account?",
                "Can you tell me which email my account is registered with? My name is {name}.",
            ),
            details=(
                "My username is {user}.", "My account email is {email}.",
                "I've had this account for years.",
            ),
        ),
        _Topic(
            cores=(
                "Someone logged into my account from {country}, I think I've been hacked. "
                "I already changed my password.",
                "Please delete my account and all the data you have on me.",
                "How can I download a copy of all my personal data?",
                "My account was suspended and I don't know why.",
                "Please reactivate my account, I closed it by accident. I love this app.",
                "I have two accounts by mistake, can you merge them?",
                "Is my account still active? I haven't used it since {month}.",
                "How do I add my partner to the {plan} plan?",
                "How do I give a colleague admin rights on our team account?",
                "My account shows the free plan even though I upgraded to {plan}.",
            ),
            details=(
                "My account email is {email}.", "I've had this account for years.",
                "Please confirm once it's done.",
            ),
        ),
    ),
    "feedback": (
        _Topic(
            cores=(
                "Love the new dark mode, great job!",
                "Your support team was super helpful, thanks {name}!",
                "Delivery was fast and the packaging was lovely.",
                "The refund process was painless, thank you.",
                "Does exactly what I need and nothing more. Five stars.",
                "I've been using {app} for years and it keeps getting better.",
                "Great {item}, exactly as described and good quality.",
                "Best note app I've tried, and I've tried a lot.",
                "The new search is so much faster, well done.",
                "Checkout was quick and easy, will buy again.",
                "The {plan} plan is worth every penny.",
                "Just wanted to say the {feature} feature saves me hours every week.",
                "Ordered a {item} as a gift and they loved it. Thanks!",
                "Customer service was slow but friendly in the end.",
            ),
            details=(
                "Keep up the good work!", "I recommend you to all my friends.",
                "Been a customer since {year}.", "Just wanted to say that.",
            ),
            negative=False,
        ),
        _Topic(
            cores=(
                "It would be great if you added a calendar integration.",
                "Suggestion: let us sort notes by colour.",
                "Would love a proper Linux version.",
                "Please add an option to turn off the sound effects.",
                "Keep the app simple please, don't turn it into another bloated suite.",
                "A family discount would be nice, we have four accounts.",
                "It would help if the order confirmation email listed the delivery date.",
            ),
            details=(
                "Please pass this on to the product team.", "Otherwise I love the app.",
                "I'd happily pay a bit more for that.",
            ),
            negative=False,
        ),
        _Topic(
            cores=(
                "The new update is much slower, please bring back the old layout.",
                "Prices are getting too high for what you offer.",
                "Too many popups asking me to upgrade, it's getting annoying.",
                "The website is confusing, it took me ages to find the help page.",
                "Not a fan of the new icons, they all look the same.",
                "The {item} is ok but smaller than it looked in the photos.",
                "Honestly the old version was better. Everything takes more taps now.",
                "Your chat bot is useless, I just want to talk to a person.",
                "App is fine but the font is way too small on the {device}.",
                "The new onboarding screens are pointless, let me skip them.",
            ),
            details=(
                "Please pass this on to the product team.",
                "Been a customer since {year}, but I'm thinking of leaving.",
                "Not angry, just disappointed.", "Thanks for listening.",
            ),
        ),
    ),
}

_SHORTS: dict[str, tuple[str, ...]] = {
    "billing": (
        "refund", "double charged", "why was i charged", "cancel my subscription", "invoice",
        "charged twice", "need a receipt", "refund please", "wrong amount charged",
        "stop charging me", "billing question",
    ),
    "technical": (
        "app crashed again", "sync not working", "cant open the app", "error 502",
        "it keeps freezing", "black screen", "app not loading", "upload fails",
        "website down", "export is broken",
    ),
    "shipping": (
        "where is my order", "package not arrived", "tracking", "wrong item received",
        "still no delivery", "when will it ship", "parcel lost", "return label",
        "order late",
    ),
    "account": (
        "forgot password", "cant log in", "delete my account", "locked out",
        "change email", "reset password", "account hacked", "no verification email",
        "2fa not working",
    ),
    "feedback": (
        "love it", "great app", "worst update ever", "5 stars", "bring back the old layout",
        "thanks for the quick help", "awesome", "meh", "too expensive", "very happy",
    ),
}

# Messages written (mostly) in another language: a keyword rule in English misses them.
_FOREIGN: dict[str, tuple[str, ...]] = {
    "billing": (
        "doppelt abgebucht!! {amount}", "me cobraron dos veces {amount}, reembolso por favor",
        "facture {order} incorrecte, merci de corriger",
    ),
    "technical": (
        "la app se cierra sola en mi {device}", "die App stürzt ständig ab",
        "l'application ne se synchronise plus",
    ),
    "shipping": (
        "mi pedido {order} no llegó, ayuda", "Bestellung {order} ist noch nicht da",
        "commande {order} toujours pas reçue",
    ),
    "account": (
        "no puedo entrar a mi cuenta", "Passwort vergessen, bitte helfen",
        "je n'arrive pas à me connecter à mon compte",
    ),
    "feedback": (
        "super app, merci beaucoup", "muy buena app, gracias", "tolle App, weiter so!",
    ),
}

# Lower-case clauses that add a second intent to a message of another class.
_SECONDARY: dict[str, tuple[str, ...]] = {
    "billing": (
        "I got charged twice for it", "I'd like a refund for this month",
        "my card was billed {amount} anyway", "the invoice amount looks wrong too",
        "you still charged me after I cancelled",
    ),
    "technical": (
        "the app crashes when I open the invoice", "the website keeps showing {error}",
        "the app freezes every few minutes", "the page won't load on my {device}",
        "sync has been broken all week",
    ),
    "shipping": (
        "my last order still hasn't arrived", "the tracking link doesn't work",
        "the package came damaged", "the delivery was two weeks late",
    ),
    "account": (
        "now I can't log in at all", "I got locked out of my account",
        "the password reset email never comes", "my profile still has my old email",
    ),
    "feedback": (
        "honestly the new design is a step backwards",
        "your chat support has been really slow lately",
        "the app used to be so much better", "prices keep going up which is annoying",
    ),
}
# Milder side remarks for feedback messages, so that the feedback stays the main point.
_SECONDARY_MILD: dict[str, tuple[str, ...]] = {
    "billing": (
        "the price went up a bit but it's still worth it",
        "I wish the annual plan was a little cheaper",
    ),
    "technical": (
        "it crashed once last week but restarting fixed it",
        "sync is sometimes slow on my {device}, not a big deal",
    ),
    "shipping": (
        "delivery took a few extra days but no big deal",
        "the box was a bit dented when it arrived",
    ),
    "account": (
        "logging in with 2FA every time is a bit of a hassle though",
        "changing my email was harder than it should be",
    ),
}
_SECONDARY_AFTER = (
    "Also, {s}.", "And {s}.", "On top of that {s}.", "Plus {s}!", "Oh and {s}.",
    "Not sure if it's related but {s}.", "Separately, {s}.", "Also {s}, great.",
)
_SECONDARY_BEFORE = (
    "{S}, but the main thing is this: {p}",
    "{S}, whatever. More important: {p}",
    "{S}. But the real problem: {p}",
)

_REQUESTS = (
    "This is urgent.", "Please help.", "Any update would be appreciated.",
    "This is the second time I'm writing about this.", "I'd appreciate a quick reply.",
    "Can someone get back to me today?", "What should I do?", "Please advise.",
)
_EMAIL_GREETINGS = (
    "Hi,", "Hello,", "Hi there,", "Dear support team,", "Hello Nimbus team,", "Hi team!",
    "Good morning,", "Hey,", "To whom it may concern,", "Dear Sir or Madam,", "Hello again.",
)
_EMAIL_SIGNOFFS = (
    "Thanks, {name}", "Thank you, {name}", "Best regards, {name}", "Kind regards, {name}",
    "Cheers, {name}", "Thanks in advance!", "Regards, {name}", "- {name}",
    "Sent from my phone",
)
_CHAT_GREETINGS = ("hi", "hello", "hey there", "hi, quick question", "hello?", "good evening")
_REVIEW_PREFIX_BAD = ("1 star.", "★☆☆☆☆", "2/5.", "Disappointed.")
_REVIEW_PREFIX_GOOD = ("5 stars!", "★★★★★", "4/5.", "Really good.")

_MISSPELLINGS = (
    ("receive", "recieve"), ("received", "recieved"), ("address", "adress"),
    ("account", "acount"), ("password", "pasword"), ("subscription", "subscribtion"),
    ("package", "pakage"), ("tracking", "traking"), ("please", "pls"), ("please", "plz"),
    ("you", "u"), ("your", "ur"), ("thanks", "thx"), ("can't", "cant"), ("don't", "dont"),
    ("I'm", "im"), ("doesn't", "doesnt"), ("because", "bc"), ("delivered", "deliverd"),
    ("invoice", "invoce"), ("refund", "refound"), ("cancelled", "canceled"),
    ("separately", "seperately"), ("definitely", "definately"), ("it's", "its"),
)
_FOREIGN_TOKENS_BEFORE = ("Hola,", "Bonjour,", "Hallo,", "Olá,", "Ciao,", "Привет,")
_FOREIGN_TOKENS_AFTER = (
    "gracias", "merci", "danke", "obrigado", "grazie", "спасибо", "por favor", "bitte",
    "ありがとう", "dziękuję",
)


@dataclass(frozen=True)
class DemoData:
    """Generated demo data: the unlabelled pool, a labelled gold set and the pool's answers."""

    pool: list[dict[str, str]]
    gold: list[dict[str, str]]
    answers: list[dict[str, str]]


@dataclass
class _Message:
    text: str
    label: str
    channel: str
    ambiguous: bool = False
    noise: tuple[str, ...] = ()
    short: bool = False
    duplicate: bool = False


def _weighted(rng: random.Random, options: Sequence[str], weights: Sequence[int]) -> str:
    """Pick one option with integer weights (integer arithmetic only, for portability)."""
    ticket = rng.randrange(sum(weights))
    for option, weight in zip(options, weights, strict=True):
        if ticket < weight:
            return option
        ticket -= weight
    raise AssertionError("unreachable")


def _class_counts(total: int) -> list[int]:
    """Split ``total`` by _CLASS_WEIGHTS with the largest-remainder method."""
    weight_sum = sum(_CLASS_WEIGHTS)
    counts = [total * w // weight_sum for w in _CLASS_WEIGHTS]
    remainders = [(total * w % weight_sum, -i) for i, w in enumerate(_CLASS_WEIGHTS)]
    for _, neg_index in sorted(remainders, reverse=True)[: total - sum(counts)]:
        counts[-neg_index] += 1
    return counts


def _label_sequence(rng: random.Random, total: int) -> list[str]:
    counts = _class_counts(total)
    labels = [label for label, count in zip(LABELS, counts, strict=True) for _ in range(count)]
    rng.shuffle(labels)
    return labels


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _add_typos(rng: random.Random, text: str) -> str:
    """Apply common misspellings and, sometimes, one slip of the keyboard."""
    words = text.split(" ")
    changed = False
    for index, word in enumerate(words):
        core = word.rstrip(".,!?")
        tail = word[len(core):]
        for right, wrong in _MISSPELLINGS:
            if core.lower() == right.lower() and rng.random() < 0.6:
                words[index] = (wrong if core[:1].islower() else _capitalize(wrong)) + tail
                changed = True
                break
    if not changed or rng.random() < 0.5:
        candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if candidates:
            index = rng.choice(candidates)
            word = words[index]
            pos = rng.randrange(1, len(word) - 1)
            kind = rng.randrange(3)
            if kind == 0:
                word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2:]
            elif kind == 1:
                word = word[:pos] + word[pos + 1:]
            else:
                word = word[:pos] + word[pos] + word[pos:]
            words[index] = word
    return " ".join(words)


def _strip_punctuation(text: str) -> str:
    return re.sub(r"[.,!?;:]+(\s|$)", r"\1", text)


def _short_message(rng: random.Random, label: str, channel: str) -> str:
    text = rng.choice(_SHORTS[label])
    if label == "feedback":
        text += rng.choice(("", "!", "!!", " " + rng.choice(_EMOJI_POSITIVE), "."))
    else:
        text += rng.choice(("", "", "?", "??", "!", "!!", "...", "?!"))
    style = rng.randrange(6)
    if style == 0:
        text = _capitalize(text)
    elif style == 1:
        text = text.upper()
    if channel == "chat" and rng.random() < 0.3:
        text = f"{rng.choice(_CHAT_GREETINGS)} {text}"
    return text


def _ambiguous_core(rng: random.Random, slots: _Slots, label: str, primary: str) -> str:
    """Add a second intent from another class; the first-stated intent stays the label."""
    other = rng.choice([other for other in LABELS if other != label])
    if label == "feedback":
        secondary = slots.fill(rng.choice(_SECONDARY_MILD[other]))
        return f"{primary} {_capitalize(secondary)}."
    secondary = slots.fill(rng.choice(_SECONDARY[other]))
    if rng.random() < 0.75:
        return f"{primary} {rng.choice(_SECONDARY_AFTER).format(s=secondary)}"
    return rng.choice(_SECONDARY_BEFORE).format(S=_capitalize(secondary), p=primary)


def _add_noise(rng: random.Random, text: str, greeted: bool) -> tuple[str, tuple[str, ...]]:
    noise: list[str] = []
    if rng.random() < 0.14:
        text = _add_typos(rng, text)
        noise.append("typos")
    if rng.random() < 0.06:
        text = _strip_punctuation(text)
        noise.append("no_punctuation")
    if rng.random() < 0.03:
        text = text.upper()
        noise.append("all_caps")
    if rng.random() < 0.035:
        if not greeted and rng.random() < 0.5:
            text = f"{rng.choice(_FOREIGN_TOKENS_BEFORE)} {text}"
        else:
            text = f"{text} {rng.choice(_FOREIGN_TOKENS_AFTER)}"
        noise.append("foreign_tokens")
    return text, tuple(noise)


def _compose(rng: random.Random, label: str, ambiguous: bool) -> _Message:
    """Build one message of class ``label``; ambiguous messages add a second intent.

    One message's random draws in one readable order, which the committed demo files depend
    on (tests/test_demo_data.py compares them with a fresh run): the steps below draw in turn.
    """
    channel = _weighted(rng, CHANNELS, _CHANNEL_WEIGHTS[label])
    slots = _Slots(rng)
    message = _Message(text="", label=label, channel=channel, ambiguous=ambiguous)

    if not ambiguous and rng.random() < _SHORT_RATE:
        message.short = True
        message.text = _short_message(rng, label, channel)
        return message
    if not ambiguous and rng.random() < _FOREIGN_RATE:
        message.noise = ("foreign",)
        message.text = slots.fill(rng.choice(_FOREIGN[label]))
        return message

    topic = rng.choice(_TOPICS[label])
    core = slots.fill(rng.choice(topic.cores))
    if ambiguous:
        core = _ambiguous_core(rng, slots, label, core)
    parts = [core, *_details(rng, slots, topic, label)]
    greeted = _frame(rng, slots, parts, topic=topic, channel=channel, label=label)
    text, message.noise = _restyle(rng, " ".join(parts), topic, channel, greeted)
    message.text = re.sub(r"\s+", " ", text).strip()
    return message


def _details(rng: random.Random, slots: _Slots, topic: _Topic, label: str) -> list[str]:
    """Up to three of the topic's details, and sometimes a request."""
    parts = []
    roll = rng.randrange(100)
    n_details = 0 if roll < 55 else 1 if roll < 85 else 2 if roll < 97 else 3
    details = list(topic.details)
    for _ in range(min(n_details, len(details))):
        detail = details.pop(rng.randrange(len(details)))
        # Skip a detail that would repeat a value the message already mentions.
        if not any(key in slots.cache for key in _Slots._PATTERN.findall(detail)):
            parts.append(slots.fill(detail))
    if label != "feedback" and rng.random() < 0.2:
        parts.append(rng.choice(_REQUESTS))
    return parts


def _frame(
    rng: random.Random, slots: _Slots, parts: list[str], *, topic: _Topic, channel: str, label: str
) -> bool:
    """The channel's greeting, sign-off or prefix, added to ``parts``; whether it greets."""
    greeted = False
    if channel == "email":
        if rng.random() < 0.7:
            parts.insert(0, rng.choice(_EMAIL_GREETINGS))
            greeted = True
        if rng.random() < 0.55:
            parts.append(slots.fill(rng.choice(_EMAIL_SIGNOFFS)))
    elif channel == "chat":
        if rng.random() < 0.3:
            parts.insert(0, rng.choice(_CHAT_GREETINGS))
            greeted = True
    elif channel == "web_form":
        if label in ("billing", "shipping") and rng.random() < 0.25 and "order" not in slots.cache:
            parts.insert(0, slots.fill("Order number: {order}."))
    elif topic.rated and rng.random() < 0.35:
        parts.insert(0, rng.choice(_REVIEW_PREFIX_BAD if topic.negative else _REVIEW_PREFIX_GOOD))
    return greeted


def _restyle(
    rng: random.Random, text: str, topic: _Topic, channel: str, greeted: bool
) -> tuple[str, tuple[str, ...]]:
    """The channel's casing and punctuation, typing noise and an emoji; the noise's kinds."""
    if channel == "chat" and rng.random() < 0.55:
        text = text.lower()
    elif channel in ("chat", "app_review") and rng.random() < 0.4:
        text = _strip_punctuation(text)
    text, noise = _add_noise(rng, text, greeted)
    if rng.random() < (0.18 if channel in ("app_review", "chat") else 0.04):
        emoji: tuple[str, ...] = _EMOJI_NEUTRAL if not topic.rated else _EMOJI_NEGATIVE
        if not topic.negative:
            emoji = _EMOJI_POSITIVE
        text = f"{text} {rng.choice(emoji)}"
    return text, noise


def _unique_message(rng: random.Random, label: str, ambiguous: bool, taken: set[str]) -> _Message:
    """Compose messages until one has a text not used yet, and reserve that text."""
    message = _compose(rng, label, ambiguous)
    for _ in range(200):
        if message.text not in taken:
            break
        message = _compose(rng, label, ambiguous)
    taken.add(message.text)
    return message


def _build(seed: int, n_pool: int, n_gold: int) -> tuple[list[_Message], list[_Message]]:
    """Generate pool and gold messages together with their bookkeeping flags."""
    if n_pool < len(LABELS) or n_gold < len(LABELS):
        raise ValueError("n_pool and n_gold must each be at least the number of labels")
    rng = random.Random(seed)
    taken: set[str] = set()

    n_duplicates = round(n_pool * _DUPLICATE_RATE)
    duplicate_slots = set(rng.sample(range(n_pool // 10, n_pool), n_duplicates))
    pool: list[_Message] = []
    originals: dict[str, list[int]] = {label: [] for label in LABELS}
    for index, label in enumerate(_label_sequence(rng, n_pool)):
        if index in duplicate_slots and originals[label]:
            source = pool[rng.choice(originals[label])]
            channel = source.channel if rng.random() < 0.7 else rng.choice(CHANNELS)
            pool.append(
                _Message(
                    text=source.text, label=label, channel=channel, ambiguous=source.ambiguous,
                    noise=source.noise, short=source.short, duplicate=True,
                )
            )
        else:
            pool.append(_unique_message(rng, label, rng.random() < _AMBIGUOUS_RATE, taken))
            originals[label].append(index)

    gold = [
        _unique_message(rng, label, rng.random() < _AMBIGUOUS_RATE, taken)
        for label in _label_sequence(rng, n_gold)
    ]
    return pool, gold


def generate(seed: int = DEFAULT_SEED, n_pool: int = 2400, n_gold: int = 200) -> DemoData:
    """Generate the demo data; the same seed always gives the same data."""
    pool_messages, gold_messages = _build(seed, n_pool, n_gold)
    pool = [
        {"id": f"t{i:05d}", "text": m.text, "channel": m.channel}
        for i, m in enumerate(pool_messages, start=1)
    ]
    answers = [
        {"id": row["id"], "label": m.label} for row, m in zip(pool, pool_messages, strict=True)
    ]
    gold = [
        {"id": f"g{i:04d}", "text": m.text, "channel": m.channel, "label": m.label}
        for i, m in enumerate(gold_messages, start=1)
    ]
    return DemoData(pool=pool, gold=gold, answers=answers)


def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[column] for column in columns])


def write(directory: Path, data: DemoData | None = None) -> list[Path]:
    """Write pool.csv, gold.csv and answers.csv into ``directory``; return their paths."""
    if data is None:
        data = generate()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = (
        ("pool.csv", ("id", "text", "channel"), data.pool),
        ("gold.csv", ("id", "text", "channel", "label"), data.gold),
        ("answers.csv", ("id", "label"), data.answers),
    )
    paths = []
    for name, columns, rows in files:
        path = directory / name
        _write_csv(path, columns, rows)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: regenerate the demo CSV files in a directory."""
    parser = argparse.ArgumentParser(
        prog="python -m labeling.demo.words",
        description="Write labelloop's synthetic demo data set (pool, gold, answers).",
    )
    parser.add_argument("directory", type=Path, help="output directory, e.g. datasets/demo")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    write(args.directory, generate(seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
