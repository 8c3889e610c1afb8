"""After `pybabel update`: restore what it cannot know for languages Babel has no data for.

pybabel writes the default two-form plural rule for an unknown locale such as Hmong (`hmn`),
which asks translators for a second plural form the language does not have, and it drops
header fields it does not know. This puts the declared rule back and trims extra forms.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Languages Babel has no locale data for, with their plural rule.
PLURAL_FORMS = {"hmn": "nplurals=1; plural=0;"}


def fix(path: Path, plural_forms: str) -> bool:
    """Rewrite one catalog in place; True when it changed."""
    text = path.read_text(encoding="utf-8")
    original = text
    header_line = f'"Plural-Forms: {plural_forms}\\n"\n'
    if '"Plural-Forms:' in text:
        # A function, not a string: re.sub would turn the header's "\\n" into a newline.
        text = re.sub(r'"Plural-Forms: [^"]*\\n"\n', lambda _m: header_line, text, count=1)
    else:
        text = text.replace('"MIME-Version:', header_line + '"MIME-Version:', 1)
    nplurals = int(re.search(r"nplurals=(\d+)", plural_forms).group(1))
    # Drop msgstr[n] lines (and their continuation lines) beyond the language's forms.
    text = re.sub(
        r'^msgstr\[(\d+)\] "[^\n]*"\n(?:"[^\n]*"\n)*',
        lambda m: "" if int(m.group(1)) >= nplurals else m.group(0),
        text,
        flags=re.MULTILINE,
    )
    if text != original:
        path.write_text(text, encoding="utf-8")
    return text != original


def mark_machine_drafted(path: Path) -> bool:
    """Keep the machine-readable draft marker that pybabel drops, when the comment says so."""
    text = path.read_text(encoding="utf-8")
    header = text.split('msgid ""', 1)[0]
    if "MACHINE-DRAFTED" not in header or '"X-Machine-Drafted:' in text:
        return False
    text = re.sub(
        r'("Generated-By: [^"]*\\n"\n)', r'\1"X-Machine-Drafted: yes\\n"\n', text, count=1
    )
    path.write_text(text, encoding="utf-8")
    return True


def main(directory: str) -> None:
    for language, forms in PLURAL_FORMS.items():
        catalog = Path(directory) / language / "LC_MESSAGES" / "messages.po"
        if catalog.exists() and fix(catalog, forms):
            print(f"fixed plural forms in {catalog}")
    for catalog in sorted(Path(directory).glob("*/LC_MESSAGES/messages.po")):
        if mark_machine_drafted(catalog):
            print(f"marked {catalog} machine-drafted")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "translations")
