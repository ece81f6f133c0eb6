#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/error.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle::cli {

int runTokenize(const std::vector<std::string>& argv) {
    const Args a(argv, {"no-bos", "decode", "skip-special"}, {"file"});
    if (a.positional().size() != 1)
        throw UsageError("usage: whittle-cli tokenize MODEL_OR_TOKENIZER_JSON [--file F] [--no-bos] [--decode [--skip-special]]");
    const Tokenizer tok = Tokenizer::fromModelOrFile(a.positional()[0]);
    if (tok.size() > tok.modelVocabSize()) {
        std::fprintf(stderr, "note: %d added token(s) lie beyond the BPE vocabulary of %d tokens:", tok.size() - tok.modelVocabSize(),
                     tok.modelVocabSize());
        for (int id = tok.modelVocabSize(); id < tok.size() && id < tok.modelVocabSize() + 5; ++id)
            std::fprintf(stderr, " %d %s", id, tok.tokenText(id).c_str());
        std::fprintf(stderr, "\n");
    }
    std::ifstream file;
    std::istream* in = &std::cin;
    if (const auto f = a.value("file")) {
        file.open(*f, std::ios::binary);
        if (!file) throw IoError(*f, {}, "cannot open input file");
        in = &file;
    }
    EncodeOptions eo;
    eo.addSpecialTokens = !a.flag("no-bos");
    std::string line;
    std::string out;
    while (std::getline(*in, line)) {
        out.clear();
        if (a.flag("decode")) {
            std::istringstream ss(line);
            std::vector<int> ids;
            std::string word;
            while (ss >> word) {
                try {
                    std::size_t used = 0;
                    ids.push_back(std::stoi(word, &used));
                    if (used != word.size()) throw std::invalid_argument(word);
                } catch (const std::exception&) {
                    throw UsageError("'" + word + "' is not a token id");
                }
            }
            out = tok.decode(ids, a.flag("skip-special"));
        } else {
            for (int id : tok.encode(line, eo)) {
                if (!out.empty()) out += ' ';
                out += std::to_string(id);
            }
        }
        out += '\n';
        std::fwrite(out.data(), 1, out.size(), stdout);
    }
    return 0;
}

}  // namespace whittle::cli
