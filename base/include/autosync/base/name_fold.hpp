// When two names are one: the rule the server applies to names in a folder and the sync
// engine to the paths it plans, so both sides agree.
#pragma once

#include <string>
#include <string_view>

namespace autosync {

// The key under which names collide: two names that differ only in letter case (any
// script's, "Straße" and "STRASSE" included) or in Unicode normalization ("é" as one code
// point or as "e" and a combining accent) are one name, as macOS and Windows devices see
// them. Canonical caseless matching (NFD, full case folding, NFC) with the Unicode tables
// of the utf8proc library: a code point it does not know folds to itself, so a library
// with newer tables could fold such a name differently. Text that is not valid UTF-8 is
// folded as ASCII.
std::string fold_name(std::string_view name);

}  // namespace autosync
