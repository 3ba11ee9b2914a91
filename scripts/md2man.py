#!/usr/bin/python3
"""Converts a Markdown reference page (docs/cli.md) into a roff manual page.

    scripts/md2man.py [--version V] [--date D] docs/cli.md > cdc.1

Only a small subset of Markdown is accepted, and anything else is refused
with FILE:LINE, so the page cannot silently lose text:

    # name(section) - anything          the title line (first line)
    one paragraph                        the NAME line ("name - what it is")
    ## Heading / ### Heading             .SH / .SS
    paragraphs                           .PP, filled
    ```fenced code```                    indented, unfilled
    - `term`: text                       a tagged paragraph (.TP)
    - text / 1. text                     a bullet / numbered item
    <!-- comment -->                     dropped
    `code`, **bold**, *italic*, [text](url)   inline

List items continue on lines indented by two or more spaces.  Standard
library only: it runs at build time.
"""

import argparse
import re
import sys


class Error(Exception):
    pass


# ---------------------------------------------------------------- inline

def escape_text(s):
    """Plain text -> roff: backslashes, minus signs, non-ASCII characters."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ch == "'":
            out.append("\\(aq")
        elif ord(ch) > 126:
            out.append("\\[u%04X]" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


INLINE = re.compile(
    r"(?P<code>`+)(?P<codetext>.+?)(?P=code)"
    r"|\*\*(?P<bold>[^*]+)\*\*"
    r"|\*(?P<ital>[^*\s][^*]*)\*"
    r"|\[(?P<ltext>[^\]]+)\]\((?P<url>[^)\s]+)\)"
)


def inline(s, where):
    """Markdown inline markup -> roff with font escapes."""
    out = []
    pos = 0
    for m in INLINE.finditer(s):
        out.append(plain(s[pos:m.start()], where))
        if m.group("code"):
            out.append("\\fB" + escape_text(m.group("codetext").strip()) + "\\fR")
        elif m.group("bold") is not None:
            out.append("\\fB" + plain(m.group("bold"), where) + "\\fR")
        elif m.group("ital") is not None:
            out.append("\\fI" + plain(m.group("ital"), where) + "\\fR")
        else:
            text = plain(m.group("ltext"), where)
            url = m.group("url")
            if re.match(r"https?://", url) and m.group("ltext") != url:
                text += " <" + escape_text(url) + ">"
            out.append(text)
        pos = m.end()
    out.append(plain(s[pos:], where))
    return "".join(out)


def plain(s, where):
    """Text between inline markup: markup characters left over are errors."""
    for bad in ("`", "**", "<", "|"):
        if bad in s:
            raise Error("%s: unsupported or unbalanced Markdown %r in: %s" % (where, bad, s.strip()))
    return escape_text(s)


def text_line(s):
    """A line of running text: a leading '.' or quote would be a request."""
    return "\\&" + s if s[:1] in (".", "'") else s


def heading_arg(s, where):
    return '"' + inline(s, where).replace('"', "\\(dq") + '"'


# ---------------------------------------------------------------- blocks

LIST_ITEM = re.compile(r"^(?:(-)|(\d+)\.)\s+(.*)$")
TERM = re.compile(r"^((?:`[^`]+`|\*\*[^*]+\*\*)(?:\s*,\s*(?:`[^`]+`|\*\*[^*]+\*\*))*):\s*(.*)$")


def convert(lines, name, version="", date=""):
    out = []
    i = 0
    n = len(lines)

    def where(k):
        return "%s:%d" % (name, k + 1)

    # drop HTML comments, keeping line numbers
    text = "\n".join(lines)
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    if "<!--" in text:
        raise Error("%s: unterminated HTML comment" % name)
    lines = text.split("\n")
    n = len(lines)

    # title
    while i < n and not lines[i].strip():
        i += 1
    m = re.match(r"^# ([A-Za-z0-9_.-]+)\((\d[a-z]*)\)", lines[i] if i < n else "")
    if not m:
        raise Error("%s: the first line must be '# NAME(SECTION) ...'" % where(i))
    title, section = m.group(1), m.group(2)
    source = ("%s %s" % (title, version)).strip()
    out.append('.TH "%s" "%s" "%s" "%s" "%s"' % (
        title.upper(), section, date, source, "User Commands" if section == "1" else ""))
    out.append(".\\\" generated from %s by scripts/md2man.py: edit that file, not this one" % name)
    out.append(".nh")     # no hyphenation: option names must stay whole
    out.append(".ad l")   # ragged right: long literals would stretch the spaces
    out.append(".SH NAME")
    i += 1

    para = []       # lines of the current paragraph (list item text included)

    def flush_para(k):
        nonlocal para
        if para:
            body = " ".join(s.strip() for s in para)
            out.append(text_line(inline(body, where(k))))
        para = []

    saw_name = False
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush_para(i)
            i += 1
            continue
        if stripped.startswith("```"):
            flush_para(i)
            start = i
            i += 1
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            while i < n and not lines[i].strip().startswith("```"):
                out.append(text_line(escape_text(lines[i].rstrip())))
                i += 1
            if i == n:
                raise Error("%s: unterminated code block" % where(start))
            out.append(".fi")
            out.append(".RE")
            i += 1
            continue
        h = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if h:
            flush_para(i)
            level = len(h.group(1))
            if level == 2:
                out.append(".SH " + heading_arg(h.group(2).upper(), where(i)))
            elif level == 3:
                out.append(".SS " + heading_arg(h.group(2), where(i)))
            else:
                raise Error("%s: only ## and ### headings are supported after the title" % where(i))
            i += 1
            continue
        if stripped.startswith(("|", ">", "* ", "+ ")) or re.match(r"^\s*<\w", line):
            raise Error("%s: unsupported Markdown (tables, quotes, '*'/'+' lists, HTML): %s"
                        % (where(i), stripped))
        item = LIST_ITEM.match(line)
        if item:
            flush_para(i)
            if not saw_name:
                raise Error("%s: the NAME paragraph must come first" % where(i))
            body = item.group(3)
            term = TERM.match(body) if item.group(1) else None
            if term:
                out.append(".TP 8")
                out.append(text_line(inline(term.group(1), where(i))))
                para = [term.group(2)] if term.group(2) else []
            elif item.group(1):
                out.append(".IP \\(bu 2")
                para = [body]
            else:
                out.append('.IP "%s." 4' % item.group(2))
                para = [body]
            i += 1
            while i < n and lines[i].startswith("  ") and lines[i].strip():
                if LIST_ITEM.match(lines[i].strip()):
                    raise Error("%s: nested lists are not supported" % where(i))
                para.append(lines[i])
                i += 1
            flush_para(i - 1)
            continue
        if line.startswith(" "):
            raise Error("%s: indented text outside a list item (indented code is not supported)"
                        % where(i))
        # a paragraph
        if not para:
            if saw_name:
                out.append(".PP")
        para.append(line)
        if not saw_name:
            # the NAME paragraph: "name - description", on one line
            saw_name = True
            m = re.match(r"^(\S+) - (.+)$", stripped)
            if not m:
                raise Error("%s: the NAME paragraph must read 'name - description'" % where(i))
            para = []
            out.append("%s \\- %s" % (escape_text(m.group(1)), inline(m.group(2), where(i))))
            if i + 1 < n and lines[i + 1].strip():
                raise Error("%s: the NAME paragraph must be one line" % where(i))
        i += 1
    flush_para(n)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description="Markdown reference page -> roff man page")
    ap.add_argument("markdown")
    ap.add_argument("--version", default="", help="shown in the page footer")
    ap.add_argument("--date", default="", help="shown in the page footer")
    args = ap.parse_args()
    with open(args.markdown, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        sys.stdout.write(convert(lines, args.markdown, args.version, args.date))
    except Error as e:
        print("md2man: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
