// Object-model throughput over the whole YAML corpus (../shared/corpus): parse + canonical
// digest of every document, against yaml-cpp's own YAML::LoadAll of the same bytes (the
// floor: no JSON tree, no digest). Files that are templates or that yaml-cpp rejects are left
// out of both, so the two runs see identical input.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/manifest/manifest.h"

namespace {

namespace fs = std::filesystem;
using driftless::manifest::Digest;
using driftless::manifest::ParseYamlDocuments;

struct Corpus {
  std::vector<std::string> files;
  int64_t bytes = 0;
};

const Corpus& LoadCorpus() {
  static const Corpus corpus = [] {
    Corpus c;
    const fs::path root = DRIFTLESS_CORPUS_DIR;
    if (!fs::exists(root)) return c;
    std::vector<fs::path> paths;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) paths.push_back(e.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string text = ss.str();
      if (text.find("{{") != std::string::npos) continue;
      try {
        (void)YAML::LoadAll(text);
      } catch (...) {
        continue;
      }
      if (!ParseYamlDocuments(text, p.string()).ok()) continue;
      c.bytes += static_cast<int64_t>(text.size());
      c.files.push_back(std::move(text));
    }
    return c;
  }();
  return corpus;
}

void BM_YamlCppLoadAll(benchmark::State& state) {
  const Corpus& c = LoadCorpus();
  for (auto _ : state) {
    for (const std::string& f : c.files) benchmark::DoNotOptimize(YAML::LoadAll(f));
  }
  state.SetBytesProcessed(state.iterations() * c.bytes);
  state.counters["files"] = static_cast<double>(c.files.size());
}
BENCHMARK(BM_YamlCppLoadAll)->Unit(benchmark::kMillisecond);

void BM_ParseYamlDocuments(benchmark::State& state) {
  const Corpus& c = LoadCorpus();
  for (auto _ : state) {
    for (const std::string& f : c.files) benchmark::DoNotOptimize(ParseYamlDocuments(f, "b"));
  }
  state.SetBytesProcessed(state.iterations() * c.bytes);
}
BENCHMARK(BM_ParseYamlDocuments)->Unit(benchmark::kMillisecond);

void BM_ParseAndDigest(benchmark::State& state) {
  const Corpus& c = LoadCorpus();
  for (auto _ : state) {
    for (const std::string& f : c.files) {
      auto docs = ParseYamlDocuments(f, "b");
      for (const auto& d : *docs) benchmark::DoNotOptimize(Digest(d.value));
    }
  }
  state.SetBytesProcessed(state.iterations() * c.bytes);
  state.counters["corpus_MB"] = static_cast<double>(c.bytes) / 1e6;
}
BENCHMARK(BM_ParseAndDigest)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
