"""Amounts in Chinese capital numerals (大写金额), as written on CNY invoices and bank forms.

The rules a finance office checks (as on Chinese bank cheques and 发票):
- digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟 within a group of four, groups 万 and 亿;
- a run of zeros inside the integer part is written as one 零; zeros at the end of a group are not written,
  and a group that is all zeros writes no group unit (but 亿 keeps a following zero run: 壹亿零伍元);
- a zero 万 group between 亿 and a non-zero lower group gives one 零 (壹亿零壹元);
- 元 is always written when the integer part is not zero; a text that ends in 元 or 角 gets 整;
- jiao 0 with fen non-zero writes 零 between 元 and the fen (壹元零伍分); with a zero integer part the
  text starts with the first non-zero of jiao and fen (伍角, 伍分);
- zero is 零元整; a negative amount is prefixed with 负.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_GROUPS = ("", "万", "亿", "万亿")
CENT = Decimal("0.01")
# 10^16 yuan: four groups of four digits; beyond it the group names above would repeat ambiguously.
LIMIT = Decimal(10) ** 16


def _group(n: int) -> str:
    """0 < n < 10000, without leading zeros and without trailing zeros' units."""
    out: list[str] = []
    zero_pending = False
    for position in range(3, -1, -1):
        digit = n // 10**position % 10
        if digit == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(DIGITS[digit] + _UNITS[position])
    return "".join(out)


def _integer(n: int) -> str:
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out: list[str] = []
    # A zero is needed before a group when a higher group was written and this group (or a skipped all-zero
    # group between them) leaves a gap at its top: 壹万零伍, 壹亿零壹, 壹拾万零伍佰.
    gap = False
    for index in range(len(groups) - 1, -1, -1):
        value = groups[index]
        if value == 0:
            if out:
                gap = True
            continue
        if out and (gap or value < 1000):
            out.append("零")
        out.append(_group(value) + _GROUPS[index])
        gap = False
    return "".join(out)


def rmb_capital(amount: Decimal) -> str:
    """`amount` in capital numerals, rounded to fen half up: 12345.67 → 壹万贰仟叁佰肆拾伍元陆角柒分."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError("amount must be a finite Decimal")
    cents = int(amount.quantize(CENT, rounding=ROUND_HALF_UP).scaleb(2))
    sign = "负" if cents < 0 else ""
    cents = abs(cents)
    if cents >= LIMIT * 100:
        raise ValueError("amount too large for capital numerals")
    yuan, rest = divmod(cents, 100)
    jiao, fen = divmod(rest, 10)
    if cents == 0:
        return "零元整"
    out = _integer(yuan) + "元" if yuan else ""
    if jiao == 0 and fen == 0:
        return sign + out + "整"
    if jiao:
        out += DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if fen:
        out += DIGITS[fen] + "分"
    else:
        out += "整"
    return sign + out
