from staticreg.build.readmes import ReadmeStore


def test_text_comes_back_byte_for_byte_and_once_per_content(tmp_path):
    store = ReadmeStore(tmp_path / "readmes")
    text = "# Title\r\n\r\nCafé, line endings kept.\n"
    first, again = store.put(text), store.put(text)
    assert first == again and store.get(first) == text
    assert store.ids() == {first}


def test_keep_only_drops_what_no_record_names(tmp_path):
    store = ReadmeStore(tmp_path / "readmes")
    kept, dropped = store.put("kept"), store.put("dropped")
    store.keep_only({kept})
    assert store.ids() == {kept} and store.get(kept) == "kept" and dropped not in store.ids()
