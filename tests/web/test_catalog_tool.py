"""tools/fix_catalogs.py: what `make i18n-update` restores after `pybabel update`."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fix_catalogs.py"
spec = importlib.util.spec_from_file_location("fix_catalogs", TOOL)
fix_catalogs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fix_catalogs)

AFTER_PYBABEL_UPDATE = """# Hmong translations for referral_hub.
# MACHINE-DRAFTED: review by a qualified translator.
msgid ""
msgstr ""
"Language: hmn\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"
"MIME-Version: 1.0\\n"
"Generated-By: Babel 2.18.0\\n"

msgid "%(num)d referral"
msgid_plural "%(num)d referrals"
msgstr[0] "%(num)d kev xa"
msgstr[1] ""
"""


def test_restores_plural_rule_and_draft_marker(tmp_path):
    catalog = tmp_path / "hmn" / "LC_MESSAGES" / "messages.po"
    catalog.parent.mkdir(parents=True)
    catalog.write_text(AFTER_PYBABEL_UPDATE, encoding="utf-8")
    fix_catalogs.main(str(tmp_path))
    text = catalog.read_text(encoding="utf-8")
    assert '"Plural-Forms: nplurals=1; plural=0;\\n"\n' in text
    assert "msgstr[1]" not in text and 'msgstr[0] "%(num)d kev xa"' in text
    assert '"X-Machine-Drafted: yes\\n"' in text
    fix_catalogs.main(str(tmp_path))
    assert catalog.read_text(encoding="utf-8") == text  # idempotent
