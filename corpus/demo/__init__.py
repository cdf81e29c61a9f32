"""The bundled fictional demo corpus: where its files, manifest and tracker workbook live."""

from pathlib import Path

DEMO_DIR = Path(__file__).parent
FILES_DIR = DEMO_DIR / "files"
#: Fictional documents shaped like real PDF-extracted partnership output (see manifest.yaml).
REALISTIC_DIR = DEMO_DIR / "realistic"
MANIFEST = DEMO_DIR / "manifest.yaml"
TRACKER = DEMO_DIR / "tracker.xlsx"
