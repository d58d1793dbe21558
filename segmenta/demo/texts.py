"""Word lists, sentence templates and the small functions that turn them into text.

Review texts are built from aspect phrases (delivery, price, quality, fit, service,
defect), each with positive and negative variants, in English, Swedish and Korean.
English phrases may contain ``{item}``, which is replaced by the reviewed product's noun.
Support transcripts follow one of three arcs: ``neutral`` (a question, answered),
``recovered`` (an angry customer who ends satisfied) and ``escalated`` (a customer who
ends worse: cancelling, demanding a refund, leaving for a competitor or asking for a
manager).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

# --- catalogue, people and places ------------------------------------------------------

# category -> (nouns, materials, (min price, max price))
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]] = {
    "knitwear": (("crew neck", "cardigan", "turtleneck", "knit vest", "hoodie"),
                 ("merino", "cashmere", "lambswool", "cotton", "alpaca"), (39.0, 189.0)),
    "shoes": (("sneakers", "loafers", "chelsea boots", "sandals", "running shoes"),
              ("leather", "suede", "canvas", "recycled", "waxed"), (49.0, 229.0)),
    "outerwear": (("parka", "rain jacket", "wool coat", "puffer jacket", "trench coat"),
                  ("waxed cotton", "wool", "recycled nylon", "down", "gabardine"), (89.0, 399.0)),
    "accessories": (("scarf", "beanie", "belt", "tote bag", "gloves", "wallet"),
                    ("wool", "leather", "linen", "canvas", "knitted"), (9.0, 89.0)),
    "home": (("throw blanket", "cushion cover", "scented candle", "mug set", "towel set"),
             ("linen", "stoneware", "wool", "organic cotton", "soy wax"), (9.0, 129.0)),
    "beauty": (("hand cream", "lip balm", "face serum", "shampoo bar", "body lotion"),
               ("oat", "sea buckthorn", "lavender", "birch", "unscented"), (5.0, 59.0)),
    "basics": (("t-shirt", "socks 3-pack", "tank top", "leggings", "boxer briefs"),
               ("organic cotton", "bamboo", "jersey", "ribbed", "recycled"), (5.0, 39.0)),
}  # fmt: skip

STYLES = (
    "Classic", "Relaxed", "Nordic", "Everyday", "Heritage", "Soft", "Studio", "Coastal",
    "Urban", "Essential",
)  # fmt: skip
FIRST_NAMES = (
    "astrid", "erik", "maja", "oskar", "elin", "lukas", "anna", "jonas", "sofia", "david",
    "emma", "liam", "olivia", "noah", "mia", "felix", "hana", "minjun", "seoyeon", "jiho",
    "grace", "oliver", "amelia", "henry", "lea", "paul", "clara", "max", "ines", "tom",
)  # fmt: skip
LAST_NAMES = (
    "berg", "lindqvist", "nilsson", "svensson", "kim", "lee", "park", "choi", "mueller",
    "schmidt", "weber", "smith", "johnson", "brown", "taylor", "wilson", "evans", "walker",
    "dubois", "jansen", "hansen", "virtanen", "moreau", "novak",
)  # fmt: skip
COUNTRIES: dict[str, float] = {
    "SE": 15, "KR": 12, "DE": 18, "US": 20, "GB": 15, "NL": 5, "FR": 5, "NO": 4, "DK": 3,
    "FI": 3,
}  # fmt: skip
GENDERS: dict[str, float] = {"female": 48, "male": 46, "non_binary": 2, "undisclosed": 4}
STORES = (
    "Stockholm Drottninggatan", "Gothenburg Avenyn", "Berlin Mitte", "London Seven Dials",
    "Seoul Seongsu", "Amsterdam De Pijp",
)  # fmt: skip
CAMPAIGNS = (
    "autumn-drop", "black-week-preview", "new-in-knitwear", "member-weekend", "care-guide",
    "last-chance-sale", "winter-outerwear",
)  # fmt: skip
DISCOUNT_CODES: dict[str, int] = {
    "AUTUMN10": 10, "SALE20": 20, "WELCOME15": 15, "STUDENT10": 10, "FLASH25": 25,
    "MEMBER5": 5, "BLACKWEEK30": 30,
}  # fmt: skip
SEARCH_TERMS = (
    "wool sweater", "rain jacket", "white sneakers", "linen shirt", "gift for her",
    "scented candle", "merino", "chelsea boots", "black coat", "socks",
)  # fmt: skip
BARGAIN_TERMS = (
    "sale", "discount code", "outlet", "cheap socks", "clearance", "under 20",
    "free shipping", "black friday", "2 for 1", "last chance",
)  # fmt: skip
SUPPORT_TOPICS = ("delivery", "return", "refund", "payment", "size", "account")
RETURN_REASONS = ("too_small", "too_large", "defective", "not_as_described", "changed_mind")


def product_count(customers: int) -> int:
    """Catalogue size: about 200 products for 2,000 customers, growing slowly."""
    return max(50, min(2_000, 150 + customers // 40))


@dataclass(frozen=True)
class Product:
    """A catalogue entry; ``noun`` ("cardigan") is what review texts call it."""

    product_id: str
    name: str
    category: str
    noun: str
    price: float


def build_catalogue(count: int, rng: random.Random) -> list[Product]:
    categories = list(CATEGORIES)
    products = []
    for i in range(count):
        category = categories[i % len(categories)]
        nouns, materials, (low, high) = CATEGORIES[category]
        noun = rng.choice(nouns)
        name = f"{rng.choice(STYLES)} {rng.choice(materials)} {noun}"
        base = math.floor(low * (high / low) ** rng.random())
        price = round(base + rng.choice((0.0, 0.9, 0.95)), 2)
        products.append(Product(f"p-{i + 1:04d}", name, category, noun, price))
    return products


def _table(table: str) -> dict[str, tuple[str, ...]]:
    """Parse ``"<key> <text>"`` lines into key -> texts, in order."""
    parsed: dict[str, list[str]] = {}
    for row in table.strip().splitlines():
        key, text = row.split(" ", 1)
        parsed.setdefault(key, []).append(text)
    return {key: tuple(rows) for key, rows in parsed.items()}


# --- reviews ---------------------------------------------------------------------------

# One phrase per line: "<language>:<slot><+|-> <text>". Slots are the six aspects plus
# "open" (a first sentence) and "close" (a last sentence); + is positive, - negative.
PHRASES = _table("""
en:delivery+ The {item} arrived two days early.
en:delivery+ Delivery was quick and the parcel was well packed.
en:delivery+ Shipping was fast, even during the sale.
en:delivery- The {item} arrived more than a week late.
en:delivery- The parcel was delayed twice and nobody told me why.
en:delivery- The box was crushed when it finally arrived.
en:price+ Great value for the price.
en:price+ Got the {item} on sale, a real bargain.
en:price+ Fairly priced for this quality.
en:price- Far too expensive for what you get.
en:price- Paid far too much for the {item} compared to other shops.
en:price- Not worth the money.
en:quality+ The material feels soft and solid.
en:quality+ Lovely quality, I can tell the {item} will last for years.
en:quality+ Excellent stitching and a beautiful finish.
en:quality- The fabric started pilling after one wash.
en:quality- The quality is much worse than it looks in the photos.
en:quality- The material of the {item} feels cheap and thin.
en:fit+ The size is spot on.
en:fit+ Fits perfectly, true to size.
en:fit+ Ordered my usual size and the {item} fit perfectly.
en:fit- Had to send the {item} back, a full size too small.
en:fit- Way too tight, even in my usual size.
en:fit- Way too big, even after ordering a size down.
en:service+ Customer service answered within minutes and sorted everything out.
en:service+ The staff in the store were friendly and helpful.
en:service+ Support was quick and kind when I had a question.
en:service- Customer service never answered my emails.
en:service- The support agent was rude and unhelpful.
en:service- Nobody picked up the phone for forty minutes.
en:defect+ Arrived in perfect condition.
en:defect+ Not a single flaw on the {item}.
en:defect+ Everything was intact and exactly as described.
en:defect- The stitching came apart after a week.
en:defect- There was a hole in the seam when I unpacked the {item}.
en:defect- The colour was completely different from the photos.
en:open+ Really happy with this one!
en:open+ Love it.
en:open+ Five stars from me.
en:open+ Exactly what I wanted.
en:open- Very disappointed.
en:open- Not happy at all.
en:open- What a letdown.
en:open- I regret this purchase.
en:close+ Will definitely buy again.
en:close+ Highly recommend.
en:close+ Already ordered another colour.
en:close- Won't order from here again.
en:close- Sending it back.
en:close- Would not recommend.
sv:delivery+ Leveransen gick snabbt och paketet kom fram i tid.
sv:delivery+ Snabb leverans, bara två dagar.
sv:delivery- Leveransen var en vecka försenad.
sv:delivery- Paketet kom fram skadat.
sv:price+ Prisvärt för kvaliteten.
sv:price+ Bra pris, särskilt på rean.
sv:price- Alldeles för dyrt för vad man får.
sv:price- Priset är på tok för högt.
sv:quality+ Materialet känns mjukt och gediget.
sv:quality+ Mycket bra kvalitet.
sv:quality- Kvaliteten är sämre än väntat.
sv:quality- Tyget noppade redan efter första tvätten.
sv:fit+ Storleken stämmer perfekt.
sv:fit+ Sitter som en smäck.
sv:fit- Storleken är alldeles för liten.
sv:fit- Den är på tok för stor.
sv:service+ Kundtjänsten var hjälpsam och svarade snabbt.
sv:service+ Trevlig och kunnig personal.
sv:service- Kundtjänsten svarade aldrig på mitt mejl.
sv:service- Otrevligt bemötande från kundtjänsten.
sv:defect+ Allt var i perfekt skick.
sv:defect+ Helt felfri, inga skador alls.
sv:defect- Sömmarna gick upp efter en vecka.
sv:defect- Det var ett hål i sömmen när jag packade upp den.
sv:open+ Mycket nöjd!
sv:open+ Rekommenderas varmt!
sv:open- Tyvärr besviken.
sv:open- Inte alls nöjd.
sv:close+ Köper gärna igen.
sv:close+ Helt klart värt pengarna.
sv:close- Kommer inte att handla här igen.
sv:close- Skickar tillbaka den.
ko:delivery+ 배송이 정말 빨랐어요.
ko:delivery+ 주문한 다음 날 바로 도착했어요.
ko:delivery- 배송이 일주일이나 늦었어요.
ko:delivery- 상자가 찢어진 채로 도착했어요.
ko:price+ 가격 대비 품질이 좋아요.
ko:price+ 세일 가격으로 저렴하게 샀어요.
ko:price- 품질에 비해 너무 비싸요.
ko:price- 가격이 너무 높아요.
ko:quality+ 소재가 부드럽고 튼튼해요.
ko:quality+ 품질이 아주 좋아요.
ko:quality- 품질이 기대보다 별로예요.
ko:quality- 한 번 세탁했더니 보풀이 생겼어요.
ko:fit+ 사이즈가 딱 맞아요.
ko:fit+ 핏이 정말 예뻐요.
ko:fit- 사이즈가 너무 작아요.
ko:fit- 사이즈가 너무 커요.
ko:service+ 고객센터가 친절하고 빠르게 답해 줬어요.
ko:service+ 상담원이 정말 친절했어요.
ko:service- 고객센터에서 답장이 없어요.
ko:service- 상담원이 불친절했어요.
ko:defect+ 불량 없이 완벽한 상태로 왔어요.
ko:defect+ 하자 하나 없이 깨끗해요.
ko:defect- 일주일 만에 실밥이 다 풀렸어요.
ko:defect- 받자마자 솔기가 터져 있었어요.
ko:open+ 정말 만족해요!
ko:open+ 강력 추천합니다!
ko:open- 너무 실망했어요.
ko:open- 별로예요.
ko:close+ 다음에도 또 살게요.
ko:close+ 친구에게도 추천했어요.
ko:close- 다시는 안 살 거예요.
ko:close- 반품하려고요.
""")

BUT: dict[str, str] = {"en": "But", "sv": "Men", "ko": "하지만"}


ASPECTS = ("delivery", "price", "quality", "fit", "service", "defect")


def review_text(
    rng: random.Random, language: str, tone: str, aspects: Mapping[str, float], product: Product
) -> str:
    """One to four sentences in ``language``; ``tone`` is positive, negative or mixed.

    Things that are not worn (home, beauty) are only reviewed on delivery, price and service.
    """
    if product.category in ("home", "beauty"):
        aspects = {a: w for a, w in aspects.items() if a in ("delivery", "price", "service")}
    first = rng.choices(list(aspects), list(aspects.values()))[0]
    rest = {aspect: weight for aspect, weight in aspects.items() if aspect != first}
    second = rng.choices(list(rest), list(rest.values()))[0]
    positive = tone == "positive"

    def phrase(slot: str, good: bool) -> str:
        key = f"{language}:{slot}{'+' if good else '-'}"
        return rng.choice(PHRASES[key]).replace("{item}", product.noun)

    if tone == "mixed":
        bad = phrase(second, False)
        if language == "en" and not bad.startswith("I "):
            bad = bad[0].lower() + bad[1:]
        return f"{phrase(first, True)} {BUT[language]} {bad}"
    parts = [phrase(first, positive)]
    if rng.random() < 0.5:
        parts.append(phrase(second, positive))
    if rng.random() < 0.6:
        parts.insert(0, phrase("open", positive))
    if rng.random() < 0.4:
        parts.append(phrase("close", positive))
    return " ".join(parts)


# --- support transcripts ---------------------------------------------------------------

# "<key> <text>" per line. Per topic: angry opener, calm question, fix (for an angry
# customer) and info (the answer to the calm question).
LINES = _table("""
bot Hi! I'm Nova, the shop's virtual assistant. What can I help you with today?
bot Welcome to customer support. Describe your issue and I'll find the right person.
angry:late_delivery My parcel is two weeks late. Again. This is ridiculous.
calm:late_delivery Hi, could you tell me when my order will arrive?
fix:late_delivery I've sent a replacement by express today, free of charge, plus a 20% voucher.
info:late_delivery It's on its way and should arrive on Thursday.
angry:wrong_size You sent me the wrong size and now I have to sort out a return myself.
calm:wrong_size Hi, I'd like to exchange a sweater for a bigger size.
fix:wrong_size I've booked a free pickup and the right size ships today by express.
info:wrong_size Of course, I've started the exchange; the new size ships as soon as it's back.
angry:damaged The coat I received has a torn lining. I paid full price for this!
calm:damaged Hello, one item in my order has a small mark on it. What should I do?
fix:damaged I've refunded the coat in full and you can keep it or donate it.
info:damaged Send us a photo and we'll refund it or send a new one, whichever you prefer.
angry:double_charge You charged my card twice for the same order. Fix it right now.
calm:double_charge Hi, I see two pending payments on my card for one order. Is that normal?
fix:double_charge I've refunded the duplicate payment; you'll see it within three working days.
info:double_charge One of them is only a reservation and disappears within a few days.
angry:discount_code Your discount code doesn't work and the sale ends tonight. Unbelievable.
calm:discount_code Hi, my discount code says it's invalid. Can you check it?
fix:discount_code I've applied the discount to your order manually and extended the code.
info:discount_code That code is for members only, but I've sent you one that works.
angry:membership I've been a member for years and you keep sending me the wrong items.
calm:membership Hi, how do I change the address on my membership?
fix:membership I've corrected your profile and added a year of free shipping as an apology.
info:membership You can change it under Account, Settings; I've updated it for you now.
angry:return_status I sent my return three weeks ago and still haven't seen a refund.
calm:return_status Hi, could you check the status of my return?
fix:return_status The return was stuck in the warehouse. I've released the refund today.
info:return_status It arrived yesterday, so the refund goes out within two days.
angry:size_advice Your size guide is useless, nothing matches it.
calm:size_advice Hi, does the wool coat run large? I'm usually a medium.
fix:size_advice I'm sorry, I've flagged the guide and sent you our measurements for each size.
info:size_advice It runs slightly large, so I'd go with a small.
angry:stock Every time I want something it's sold out. Why even show it?
calm:stock Hi, will the black chelsea boots in size 42 be back in stock?
fix:stock I've reserved the next pair for you and you'll get an email when it ships.
info:stock Yes, they're back next week. I can notify you when they arrive.
angry I've already explained this twice.
angry This is the third time I'm contacting you about it.
angry Honestly, I expected a lot better from you.
angry Nobody has given me a straight answer yet.
calmer Okay. Yes, the order number is in my account.
calmer Fine, I can send a photo if that helps.
calmer Alright, thanks for looking into it.
neutral Sure, it's the email address on my account.
neutral Yes, that's right.
neutral No rush, I can wait a moment.
satisfied Thank you, that's great. Really appreciate it.
satisfied Perfect, that solves it. Thanks a lot!
satisfied Okay, that's a fair solution. Thank you for your help.
thanks Great, thanks for the quick help!
thanks Thanks, that's all I needed.
end:cancel Just cancel my account. I'm done with this shop.
end:cancel Cancel my membership, and I don't want any more emails either.
end:refund I want a full refund, now. Not a voucher.
end:refund Refund everything to my card or I'll file a chargeback with my bank.
end:competitor Forget it. I'll buy from NordThread from now on, they actually deliver.
end:competitor A competitor would have sorted this in five minutes. I'm switching.
end:manager This is unacceptable. I want to speak to a manager.
end:manager Put me through to your manager, please. Now.
ack I'm so sorry about this. Let me look into it right away.
ack I completely understand your frustration. Could you give me your order number?
ack Thanks for reaching out, and sorry for the trouble. I'm checking your order now.
answer Happy to help! I'm checking that for you now.
answer Of course. Could you give me your order number?
probe I can see the order here. Could you confirm the delivery address?
probe Thanks. Could you tell me which item it is?
probe I'm checking with the warehouse now, it will only take a moment.
policy Unfortunately our policy only allows refunds within 14 days of delivery.
policy I'm afraid I can only offer store credit at this point.
policy I understand, but the warehouse needs another five working days.
close+ You're welcome! Is there anything else I can help you with?
close+ Glad I could help. Have a lovely day!
close- I'm sorry to hear that. I've passed your case on to my team lead.
close- I understand. I've registered your request; you'll get a confirmation by email.
""")


def transcript_turns(
    rng: random.Random, arc: str, topic: str, ending: str, bot_first: bool
) -> list[tuple[str, str]]:
    """3-10 (speaker, text) turns, customer and agent alternating, maybe after a bot."""
    size = rng.randint(3, 9 if bot_first else 10)
    asks, answers = (size + 1) // 2, size // 2
    middle = asks - 2
    if arc == "neutral":
        said = [LINES[f"calm:{topic}"][0], *rng.sample(LINES["neutral"], middle)]
        said.append(rng.choice(LINES["thanks"]))
    elif arc == "recovered":
        angry = (middle + 1) // 2
        said = [LINES[f"angry:{topic}"][0], *rng.sample(LINES["angry"], angry)]
        said += [*rng.sample(LINES["calmer"], middle - angry), rng.choice(LINES["satisfied"])]
    else:
        said = [LINES[f"angry:{topic}"][0], *rng.sample(LINES["angry"], middle)]
        said.append(rng.choice(LINES[f"end:{ending}"]))
    replies, probes = [], rng.sample(LINES["probe"], len(LINES["probe"]))
    for j in range(answers):
        if j == asks - 1:  # after the customer's last word
            key = "close-" if arc == "escalated" else "close+"
        elif j == asks - 2:  # what the customer's last word answers
            key = {"neutral": f"info:{topic}", "recovered": f"fix:{topic}"}.get(arc, "policy")
        elif j == 0:
            key = "answer" if arc == "neutral" else "ack"
        else:
            replies.append(probes.pop())
            continue
        replies.append(rng.choice(LINES[key]))
    turns = [("bot", rng.choice(LINES["bot"]))] if bot_first else []
    for i in range(size):
        turns.append(("customer", said[i // 2]) if i % 2 == 0 else ("agent", replies[i // 2]))
    return turns
