"""``{% load flagsync %}{% flag "name" %}…{% else %}…{% endflag %}``.

The request comes from the template context (enable the
django.template.context_processors.request context processor); without one the flag is
evaluated with an empty context.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.template.context import Context

from .. import flag_is_active, flag_value

register = template.Library()


class FlagNode(template.Node):
    def __init__(self, name: FilterExpression, on: NodeList, off: NodeList) -> None:
        self.name = name
        self.nodelist_on = on
        self.nodelist_off = off

    def render(self, context: Context) -> str:
        name = str(self.name.resolve(context))
        request = context.get("request")
        if flag_is_active(request, name):
            return str(self.nodelist_on.render(context))
        return str(self.nodelist_off.render(context))


@register.tag(name="flag")
def do_flag(parser: Parser, token: Token) -> FlagNode:
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError('usage: {% flag "name" %}…{% else %}…{% endflag %}')
    name = parser.compile_filter(bits[1])
    on = parser.parse(("else", "endflag"))
    tok = parser.next_token()
    off = NodeList()
    if tok.contents == "else":
        off = parser.parse(("endflag",))
        parser.delete_first_token()
    return FlagNode(name, on, off)


@register.simple_tag(takes_context=True)
def flag_value_of(context: Context, name: str, default: Any = None) -> Any:
    """``{% flag_value_of "checkout_button_color" "#000" as color %}``."""
    return flag_value(context.get("request"), name, default)
