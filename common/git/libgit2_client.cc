#include "common/git/libgit2_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include <git2.h>

#include "common/git/internal/host_verify.h"
#include "common/git/internal/socket_stream.h"
#include "common/git/internal/str.h"
#include "common/git/url.h"
#include "common/manifest/manifest.h"

namespace driftless::git {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using internal::Cat;
using internal::Split;

struct Libgit2Client::Mirror {
  std::mutex mu;
  std::string path;
  bool cleaned = false;  // stale lock files removed (first use in this process)
};

namespace {

// ---------------------------------------------------------------------------------------------
// RAII for libgit2 handles.

template <typename T, void (*F)(T*)>
struct Freer {
  void operator()(T* p) const {
    if (p) F(p);
  }
};
template <typename T, void (*F)(T*)>
using Owned = std::unique_ptr<T, Freer<T, F>>;

using RepoPtr = Owned<git_repository, git_repository_free>;
using RemotePtr = Owned<git_remote, git_remote_free>;
using ObjectPtr = Owned<git_object, git_object_free>;
using CommitPtr = Owned<git_commit, git_commit_free>;
using TreePtr = Owned<git_tree, git_tree_free>;
using EntryPtr = Owned<git_tree_entry, git_tree_entry_free>;
using BlobPtr = Owned<git_blob, git_blob_free>;
using DiffPtr = Owned<git_diff, git_diff_free>;
using RefPtr = Owned<git_reference, git_reference_free>;
using IterPtr = Owned<git_reference_iterator, git_reference_iterator_free>;
using OdbPtr = Owned<git_odb, git_odb_free>;

void InitLibgit2Once() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    // Mirrors are created and used only by this process; a cache volume mounted with another
    // owner (containers) must not make them unopenable ("safe.directory").
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    // Connect/read timeouts for every plain socket (http, git, under https and ssh); a
    // failure is reported by each network operation (PrepareNetwork).
    (void)internal::RegisterSocketStream();
  });
}

std::string OidHex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof(buf), oid);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Per-operation state shared with libgit2 callbacks.

struct OpContext {
  std::string raw_url;
  std::string url;  // redacted
  const Credentials* credentials = nullptr;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  int credential_attempts = 0;
  absl::Status callback_status;  // why a callback aborted the operation
  std::vector<std::string> header_storage;
  std::vector<char*> header_ptrs;
  git_strarray headers{nullptr, 0};
  // Socket timeouts and the deadline for streams libgit2 opens during a network operation;
  // set by PrepareNetwork, active until the operation returns.
  std::optional<internal::NetworkScope> net;

  absl::Status DeadlineStatus() const {
    return absl::DeadlineExceededError(
        Cat("git operation on ", url, " exceeded its timeout of ", timeout.count(), "ms"));
  }

  bool Expired() {
    if (Clock::now() <= deadline) return false;
    if (callback_status.ok()) callback_status = DeadlineStatus();
    return true;
  }
};

// Removes secrets that might appear in a libgit2 message (URLs with userinfo, the password).
std::string Scrub(std::string msg, const OpContext& ctx) {
  auto replace_all = [&msg](const std::string& from, const std::string& to) {
    if (from.empty() || from == to) return;
    for (size_t pos = msg.find(from); pos != std::string::npos;
         pos = msg.find(from, pos + to.size())) {
      msg.replace(pos, from.size(), to);
    }
  };
  replace_all(ctx.raw_url, ctx.url);
  if (ctx.credentials) {
    replace_all(ctx.credentials->password, "<redacted>");
    replace_all(ctx.credentials->bearer_token, "<redacted>");
    replace_all(ctx.credentials->ssh_passphrase, "<redacted>");
  }
  return msg;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Turns a failed libgit2 call into a Status. `what` says what was being done ("fetch of ...",
// already naming the ref if any); `network` picks kUnavailable over kInternal as the default.
absl::Status GitError(int rc, const OpContext& ctx, std::string_view what, bool network) {
  if (!ctx.callback_status.ok()) return ctx.callback_status;
  // Checked before git_error_last(): the TLS layer replaces the stream's message with its own.
  if (ctx.net && ctx.net->timeout()) {
    if (ctx.net->timeout()->operation_deadline) return ctx.DeadlineStatus();
    return absl::DeadlineExceededError(Cat(what, ": ", ctx.net->timeout()->message));
  }
  const git_error* e = git_error_last();
  std::string msg = Scrub(e && e->message ? e->message : "unknown libgit2 error", ctx);
  int klass = e ? e->klass : GIT_ERROR_NONE;
  std::string text = Cat(what, ": ", msg);
  std::string lower = msg;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

  if (rc == GIT_EAUTH || Contains(lower, "status code: 401") ||
      Contains(lower, "authentication required") || Contains(lower, "authentication failed")) {
    return absl::UnauthenticatedError(text);
  }
  if (Contains(lower, "status code: 403")) return absl::PermissionDeniedError(text);
  if (rc == GIT_ECERTIFICATE) return absl::FailedPreconditionError(text);
  if (rc == GIT_EAMBIGUOUS) return absl::InvalidArgumentError(text);
  if (rc == GIT_ENOTFOUND || Contains(lower, "status code: 404") ||
      Contains(lower, "not exported") || Contains(lower, "not found") ||
      Contains(lower, "does not appear to be a git repository") ||
      Contains(lower, "could not find repository") ||
      (ctx.url.starts_with("file://") && Contains(lower, "failed to resolve path"))) {
    return absl::NotFoundError(text);
  }
  if (Contains(lower, "unsupported url protocol") || Contains(lower, "unsupported")) {
    return absl::UnimplementedError(text);
  }
  switch (klass) {
    case GIT_ERROR_NET:
    case GIT_ERROR_SSL:
    case GIT_ERROR_SSH:
    case GIT_ERROR_HTTP:
      return absl::UnavailableError(text);
    case GIT_ERROR_OS:
      if (network) return absl::UnavailableError(text);
      return absl::InternalError(text);
    default:
      return network ? absl::UnavailableError(text) : absl::InternalError(text);
  }
}

// True if a failed fetch looks like local damage (worth deleting and recreating the mirror).
bool IsLocalDamage(const absl::Status& s, int klass) {
  if (s.code() != absl::StatusCode::kInternal && s.code() != absl::StatusCode::kUnavailable) {
    return false;
  }
  switch (klass) {
    case GIT_ERROR_ODB:
    case GIT_ERROR_REFERENCE:
    case GIT_ERROR_REPOSITORY:
    case GIT_ERROR_OBJECT:
    case GIT_ERROR_FILESYSTEM:
    case GIT_ERROR_CONFIG:
    case GIT_ERROR_ZLIB:
    case GIT_ERROR_INDEXER:
      return true;
    default:
      return false;
  }
}

int CredentialsCb(git_credential** out, const char* /*url*/, const char* username_from_url,
                  unsigned int allowed_types, void* payload) {
  auto* ctx = static_cast<OpContext*>(payload);
  if (ctx->Expired()) return GIT_EUSER;
  const Credentials& c = *ctx->credentials;
  if (++ctx->credential_attempts > 1) {
    ctx->callback_status = absl::UnauthenticatedError(Cat("credentials rejected by ", ctx->url));
    return GIT_EUSER;
  }
  std::string user = !c.username.empty()
                         ? c.username
                         : (username_from_url && *username_from_url ? username_from_url : "git");
  if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) && !c.ssh_private_key.empty()) {
    int rc = git_credential_ssh_key_memory_new(
        out, user.c_str(), nullptr, c.ssh_private_key.c_str(),
        c.ssh_passphrase.empty() ? nullptr : c.ssh_passphrase.c_str());
    if (rc < 0) {
      ctx->callback_status = absl::UnimplementedError(
          Cat("SSH key authentication to ", ctx->url, " is not available in this libgit2 build"));
      return GIT_EUSER;
    }
    return 0;
  }
  if ((allowed_types & GIT_CREDENTIAL_USERNAME) && !c.ssh_private_key.empty()) {
    return git_credential_username_new(out, user.c_str());
  }
  if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !c.password.empty()) {
    return git_credential_userpass_plaintext_new(out, user.c_str(), c.password.c_str());
  }
  ctx->callback_status = absl::UnauthenticatedError(
      Cat(ctx->url, " requires authentication and no matching credentials are configured",
          (allowed_types & GIT_CREDENTIAL_SSH_KEY) ? " (want an SSH private key)"
                                                   : " (want username and password or token)"));
  return GIT_EUSER;
}

int CertificateCheckCb(git_cert* cert, int valid, const char* host, void* payload) {
  auto* ctx = static_cast<OpContext*>(payload);
  if (ctx->Expired()) return GIT_EUSER;
  const Credentials& c = *ctx->credentials;
  if (cert->cert_type == GIT_CERT_X509) {
    if (valid) return 0;
    if (c.ca_data.empty()) return GIT_PASSTHROUGH;  // libgit2 reports GIT_ECERTIFICATE
    auto* x509 = reinterpret_cast<git_cert_x509*>(cert);
    absl::Status s = internal::VerifyCertificateWithCa(
        static_cast<const unsigned char*>(x509->data), x509->len, c.ca_data, host ? host : "");
    if (s.ok()) return 0;
    ctx->callback_status = absl::Status(s.code(), Cat(s.message(), " (", ctx->url, ")"));
    return GIT_EUSER;
  }
  if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
    if (c.ssh_known_hosts.empty()) return 0;  // documented: no knownHosts = accept any key
    auto* key = reinterpret_cast<git_cert_hostkey*>(cert);
    if (!(key->type & GIT_CERT_SSH_RAW)) {
      ctx->callback_status = absl::FailedPreconditionError(
          Cat("SSH host key of ", host ? host : "", " cannot be checked against knownHosts"));
      return GIT_EUSER;
    }
    absl::Status s = internal::CheckKnownHosts(c.ssh_known_hosts, host ? host : "",
                                               std::string_view(key->hostkey, key->hostkey_len));
    if (s.ok()) return 0;
    ctx->callback_status = absl::Status(s.code(), Cat(s.message(), " (", ctx->url, ")"));
    return GIT_EUSER;
  }
  return GIT_PASSTHROUGH;
}

int TransferProgressCb(const git_indexer_progress* /*stats*/, void* payload) {
  return static_cast<OpContext*>(payload)->Expired() ? -1 : 0;
}

int SidebandCb(const char* /*str*/, int /*len*/, void* payload) {
  return static_cast<OpContext*>(payload)->Expired() ? -1 : 0;
}

int UpdateTipsCb(const char* /*refname*/, const git_oid* /*a*/, const git_oid* /*b*/,
                 void* payload) {
  return static_cast<OpContext*>(payload)->Expired() ? -1 : 0;
}

// Prepares `ctx` and `cb` for a network operation on `url`, and activates the socket timeouts
// and deadline on this thread until `ctx` is destroyed. kUnimplemented for credential kinds
// this build or URL scheme cannot use; kInternal if the socket stream is not registered.
absl::Status PrepareNetwork(std::string_view url, const Credentials& credentials,
                            const Libgit2ClientOptions& options, OpContext& ctx,
                            git_remote_callbacks& cb) {
  ctx.raw_url = std::string(url);
  ctx.url = RedactUrl(url);
  ctx.credentials = &credentials;
  ctx.timeout = options.timeout;
  ctx.deadline = Clock::now() + options.timeout;
  DL_RETURN_IF_ERROR(internal::RegisterSocketStream());
  ctx.net.emplace(
      internal::StreamTimeouts{.connect = options.connect_timeout, .read = options.read_timeout},
      ctx.deadline);
  bool ssh = url.starts_with("ssh://") ||
             (url.find("://") == std::string_view::npos &&
              url.find('@') != std::string_view::npos && url.find(':') != std::string_view::npos);
  if ((ssh || !credentials.ssh_private_key.empty()) && !Libgit2Client::SupportsSsh()) {
    return absl::UnimplementedError(
        Cat("cannot use ", ctx.url, ": this libgit2 build has no SSH support (libssh2)"));
  }
  if (!credentials.bearer_token.empty()) {
    ctx.header_storage.push_back("Authorization: Bearer " + credentials.bearer_token);
  }
  for (std::string& h : ctx.header_storage) ctx.header_ptrs.push_back(h.data());
  ctx.headers.strings = ctx.header_ptrs.data();
  ctx.headers.count = ctx.header_ptrs.size();

  git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
  cb.credentials = CredentialsCb;
  cb.certificate_check = CertificateCheckCb;
  cb.transfer_progress = TransferProgressCb;
  cb.sideband_progress = SidebandCb;
  cb.update_tips = UpdateTipsCb;
  cb.payload = &ctx;
  return absl::OkStatus();
}

// Reads "refs/heads/*", "refs/tags/*" (peeled to commits) and HEAD from a local repository.
absl::StatusOr<RefMap> ReadLocalRefs(git_repository* repo, const OpContext& ctx) {
  RefMap refs;
  git_reference_iterator* raw_iter = nullptr;
  if (int rc = git_reference_iterator_new(&raw_iter, repo); rc < 0) {
    return GitError(rc, ctx, Cat("listing refs of the mirror of ", ctx.url), false);
  }
  IterPtr iter(raw_iter);
  git_reference* raw_ref = nullptr;
  while (git_reference_next(&raw_ref, iter.get()) == 0) {
    RefPtr ref(raw_ref);
    std::string name = git_reference_name(ref.get());
    if (!name.starts_with("refs/heads/") && !name.starts_with("refs/tags/")) continue;
    git_object* raw_obj = nullptr;
    if (git_reference_peel(&raw_obj, ref.get(), GIT_OBJECT_COMMIT) < 0) continue;  // tag of a tree
    ObjectPtr obj(raw_obj);
    refs[name] = OidHex(git_object_id(obj.get()));
  }
  git_object* head = nullptr;
  if (git_revparse_single(&head, repo, "HEAD^{commit}") == 0) {
    ObjectPtr owned(head);
    refs["HEAD"] = OidHex(git_object_id(head));
  }
  git_error_clear();
  return refs;
}

// ---------------------------------------------------------------------------------------------
// Mirror management.

absl::Status FsError(const std::error_code& ec, std::string_view what) {
  if (ec == std::errc::no_space_on_device) {
    return absl::ResourceExhaustedError(Cat(what, ": ", ec.message()));
  }
  return absl::InternalError(Cat(what, ": ", ec.message()));
}

void RemoveStaleLocks(const std::string& path) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".lock") {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

// Opens the bare mirror at `path`, creating it (in a temporary directory renamed into place)
// if missing or unopenable.
absl::StatusOr<RepoPtr> OpenOrCreateMirror(const std::string& path, const OpContext& ctx,
                                           bool force_recreate) {
  std::error_code ec;
  if (!force_recreate && fs::exists(path, ec)) {
    git_repository* raw = nullptr;
    if (git_repository_open_bare(&raw, path.c_str()) == 0) return RepoPtr(raw);
    git_error_clear();
  }
  fs::remove_all(path, ec);
  if (ec) return FsError(ec, Cat("removing broken mirror of ", ctx.url));
  static std::atomic<uint64_t> counter{0};
  std::string tmp = Cat(path, ".tmp-", static_cast<uint64_t>(getpid()), "-", counter++);
  fs::remove_all(tmp, ec);
  git_repository* raw = nullptr;
  if (int rc = git_repository_init(&raw, tmp.c_str(), /*is_bare=*/1); rc < 0) {
    return GitError(rc, ctx, Cat("creating the mirror of ", ctx.url), false);
  }
  git_repository_free(raw);
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return FsError(ec, Cat("creating the mirror of ", ctx.url));
  }
  raw = nullptr;
  if (int rc = git_repository_open_bare(&raw, path.c_str()); rc < 0) {
    return GitError(rc, ctx, Cat("opening the mirror of ", ctx.url), false);
  }
  return RepoPtr(raw);
}

// Removes temporary directories that a crashed process left next to `path`.
void RemoveOrphanTemps(const std::string& path) {
  fs::path p(path);
  std::string prefix = p.filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(p.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(prefix)) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
    }
  }
}

absl::StatusOr<RepoPtr> OpenExistingMirror(const std::string& path, const OpContext& ctx) {
  std::error_code ec;
  git_repository* raw = nullptr;
  if (!fs::exists(path, ec) || git_repository_open_bare(&raw, path.c_str()) < 0) {
    git_error_clear();
    return absl::NotFoundError(Cat("no mirror of ", ctx.url, " in the cache; fetch it first"));
  }
  return RepoPtr(raw);
}

// Looks up a commit by full sha or unique prefix.
absl::StatusOr<CommitPtr> LookupCommit(git_repository* repo, std::string_view sha,
                                       const OpContext& ctx) {
  if (!LooksLikeSha(sha)) {
    return absl::InvalidArgumentError(
        Cat("commit \"", sha, "\" for ", ctx.url, ": want a hex sha of 7 to 40 digits"));
  }
  git_oid oid;
  if (git_oid_fromstrn(&oid, std::string(sha).c_str(), sha.size()) < 0) {
    return absl::InvalidArgumentError(Cat("commit \"", sha, "\" for ", ctx.url, ": not hex"));
  }
  git_object* raw = nullptr;
  int rc = git_object_lookup_prefix(&raw, repo, &oid, sha.size(), GIT_OBJECT_COMMIT);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    return absl::NotFoundError(Cat("commit ", sha, " not found in the mirror of ", ctx.url));
  }
  if (rc == GIT_EAMBIGUOUS) {
    git_error_clear();
    return absl::InvalidArgumentError(
        Cat("commit ", sha, " is ambiguous in ", ctx.url, "; give more digits"));
  }
  if (rc < 0) return GitError(rc, ctx, Cat("looking up commit ", sha, " in ", ctx.url), false);
  return CommitPtr(reinterpret_cast<git_commit*>(raw));
}

// ---------------------------------------------------------------------------------------------
// Checkout planning: validate everything before writing anything.

struct PlanEntry {
  enum class Kind { kDir, kFile, kExecutable, kSymlink, kSubmodule };
  Kind kind;
  std::string path;  // relative to the checkout root
  git_oid oid;
  std::string link_target;  // for symlinks
};

std::vector<std::string> Components(std::string_view path) {
  std::vector<std::string> out;
  for (std::string_view c : Split(path, "/", true)) out.emplace_back(c);
  return out;
}

std::string JoinPath(const std::vector<std::string>& parts) { return internal::Join(parts, "/"); }

// OK if the symlink at `link_path` with `target` resolves (following other symlinks of the
// checkout, like the kernel would) to a location inside the checkout root.
absl::Status CheckSymlink(const std::map<std::string, std::string>& symlinks,
                          const std::string& link_path, const std::string& target,
                          const OpContext& ctx) {
  auto escape = [&] {
    return absl::InvalidArgumentError(Cat("symlink ", link_path, " -> ", target, " in ", ctx.url,
                                          " points outside the checkout; refused"));
  };
  if (target.empty() || target[0] == '/' || target.find('\0') != std::string::npos) {
    return escape();
  }
  std::vector<std::string> stack = Components(link_path);
  stack.pop_back();  // the link's directory
  std::deque<std::string> todo;
  for (std::string& c : Components(target)) todo.push_back(std::move(c));
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (stack.empty()) return escape();
      stack.pop_back();
      continue;
    }
    stack.push_back(c);
    auto it = symlinks.find(JoinPath(stack));
    if (it == symlinks.end()) continue;
    if (++hops > 40) {
      return absl::InvalidArgumentError(
          Cat("symlink ", link_path, " in ", ctx.url, " has too many levels of links"));
    }
    stack.pop_back();
    if (it->second.empty() || it->second[0] == '/') return escape();
    std::vector<std::string> more = Components(it->second);
    todo.insert(todo.begin(), more.begin(), more.end());
  }
  return absl::OkStatus();
}

struct Plan {
  std::vector<PlanEntry> entries;
  uint64_t files = 0;
  uint64_t bytes = 0;
  std::vector<std::string> submodules;
};

absl::StatusOr<Plan> PlanCheckout(git_repository* repo, git_tree* root, const OpContext& ctx,
                                  std::string_view where, uint64_t max_files, uint64_t max_bytes) {
  git_odb* raw_odb = nullptr;
  if (int rc = git_repository_odb(&raw_odb, repo); rc < 0) {
    return GitError(rc, ctx, Cat("opening objects of ", ctx.url), false);
  }
  OdbPtr odb(raw_odb);
  Plan plan;
  std::map<std::string, std::string> symlinks;
  auto over_limit = [&] {
    return absl::ResourceExhaustedError(
        Cat("checkout of ", where, " exceeds the limits of ", max_files, " files and ", max_bytes,
            " bytes (at least ", plan.files, " files, ", plan.bytes, " bytes)"));
  };
  // Explicit stack: trees can be deeper than the C++ stack allows.
  std::vector<std::pair<std::string, TreePtr>> stack;
  git_tree* root_dup = nullptr;
  git_tree_dup(&root_dup, root);
  stack.emplace_back("", TreePtr(root_dup));
  while (!stack.empty()) {
    auto [dir, tree] = std::move(stack.back());
    stack.pop_back();
    size_t n = git_tree_entrycount(tree.get());
    for (size_t i = 0; i < n; ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tree.get(), i);
      std::string name = git_tree_entry_name(e);
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        return absl::InvalidArgumentError(
            Cat("unsafe path \"", dir, name, "\" in ", where, "; refused"));
      }
      std::string path = dir + name;
      PlanEntry pe{PlanEntry::Kind::kFile, path, *git_tree_entry_id(e), ""};
      git_filemode_t mode = git_tree_entry_filemode(e);
      switch (mode) {
        case GIT_FILEMODE_TREE: {
          pe.kind = PlanEntry::Kind::kDir;
          git_tree* sub = nullptr;
          if (int rc = git_tree_lookup(&sub, repo, &pe.oid); rc < 0) {
            return GitError(rc, ctx, Cat("reading tree ", path, " of ", where), false);
          }
          stack.emplace_back(path + "/", TreePtr(sub));
          break;
        }
        case GIT_FILEMODE_COMMIT:
          pe.kind = PlanEntry::Kind::kSubmodule;
          plan.submodules.push_back(path);
          break;
        case GIT_FILEMODE_LINK: {
          pe.kind = PlanEntry::Kind::kSymlink;
          git_blob* blob = nullptr;
          if (int rc = git_blob_lookup(&blob, repo, &pe.oid); rc < 0) {
            return GitError(rc, ctx, Cat("reading symlink ", path, " of ", where), false);
          }
          BlobPtr owned(blob);
          pe.link_target.assign(static_cast<const char*>(git_blob_rawcontent(blob)),
                                static_cast<size_t>(git_blob_rawsize(blob)));
          symlinks[path] = pe.link_target;
          ++plan.files;
          break;
        }
        case GIT_FILEMODE_BLOB:
        case GIT_FILEMODE_BLOB_EXECUTABLE: {
          pe.kind =
              mode == GIT_FILEMODE_BLOB ? PlanEntry::Kind::kFile : PlanEntry::Kind::kExecutable;
          size_t size = 0;
          git_object_t type;
          if (int rc = git_odb_read_header(&size, &type, odb.get(), &pe.oid); rc < 0) {
            return GitError(rc, ctx, Cat("reading file ", path, " of ", where), false);
          }
          ++plan.files;
          plan.bytes += size;
          break;
        }
        default:
          return absl::InvalidArgumentError(
              Cat("unsupported file mode ", static_cast<int>(mode), " of ", path, " in ", where));
      }
      if (plan.files > max_files || plan.bytes > max_bytes) return over_limit();
      plan.entries.push_back(std::move(pe));
    }
  }
  for (const PlanEntry& pe : plan.entries) {
    if (pe.kind != PlanEntry::Kind::kSymlink) continue;
    DL_RETURN_IF_ERROR(CheckSymlink(symlinks, pe.path, pe.link_target, ctx));
  }
  return plan;
}

absl::Status WriteFile(const std::string& path, const void* data, size_t size, bool executable) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                executable ? 0755 : 0644);
  if (fd < 0) {
    return FsError(std::error_code(errno, std::generic_category()), Cat("writing ", path));
  }
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::error_code ec(errno, std::generic_category());
      close(fd);
      return FsError(ec, Cat("writing ", path));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  if (close(fd) < 0) {
    return FsError(std::error_code(errno, std::generic_category()), Cat("writing ", path));
  }
  return absl::OkStatus();
}

absl::Status WritePlan(git_repository* repo, const Plan& plan, const std::string& dest,
                       const OpContext& ctx) {
  // Directories and files first, symlinks last, so nothing is ever written through a link.
  for (int pass = 0; pass < 2; ++pass) {
    for (const PlanEntry& pe : plan.entries) {
      bool link = pe.kind == PlanEntry::Kind::kSymlink;
      if ((pass == 0) == link) continue;
      std::string path = dest + "/" + pe.path;
      std::error_code ec;
      switch (pe.kind) {
        case PlanEntry::Kind::kDir:
        case PlanEntry::Kind::kSubmodule:
          fs::create_directory(path, ec);
          if (ec) return FsError(ec, Cat("creating ", path));
          break;
        case PlanEntry::Kind::kSymlink:
          fs::create_symlink(pe.link_target, path, ec);
          if (ec) return FsError(ec, Cat("creating symlink ", path));
          break;
        case PlanEntry::Kind::kFile:
        case PlanEntry::Kind::kExecutable: {
          git_blob* blob = nullptr;
          if (int rc = git_blob_lookup(&blob, repo, &pe.oid); rc < 0) {
            return GitError(rc, ctx, Cat("reading ", pe.path, " from the mirror of ", ctx.url),
                            false);
          }
          BlobPtr owned(blob);
          DL_RETURN_IF_ERROR(WriteFile(path, git_blob_rawcontent(blob),
                                       static_cast<size_t>(git_blob_rawsize(blob)),
                                       pe.kind == PlanEntry::Kind::kExecutable));
          break;
        }
      }
    }
  }
  return absl::OkStatus();
}

void EmptyDirectory(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
}

// "./a//b/" → "a/b"; kInvalidArgument for absolute paths and "..".
absl::StatusOr<std::string> CleanSubpath(std::string_view subpath, const OpContext& ctx) {
  if (!subpath.empty() && subpath[0] == '/') {
    return absl::InvalidArgumentError(
        Cat("path \"", subpath, "\" in ", ctx.url, " must be relative to the repository root"));
  }
  std::vector<std::string> parts;
  for (std::string_view c : Split(subpath, "/", true)) {
    if (c == ".") continue;
    if (c == ".." || c.find('\0') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          Cat("path \"", subpath, "\" in ", ctx.url, " must not contain \"..\""));
    }
    parts.emplace_back(c);
  }
  return JoinPath(parts);
}

}  // namespace

// -----------------------------------------------------------------------------------------------

Libgit2Client::Libgit2Client(Libgit2ClientOptions options) : options_(std::move(options)) {
  InitLibgit2Once();
  std::error_code ec;
  fs::create_directories(options_.cache_dir, ec);
}

Libgit2Client::~Libgit2Client() = default;

bool Libgit2Client::SupportsSsh() {
  InitLibgit2Once();
  return (git_libgit2_features() & GIT_FEATURE_SSH) != 0;
}

std::string Libgit2Client::MirrorPathForTest(std::string_view url) const {
  return Cat(options_.cache_dir, "/", manifest::Sha256Hex(NormalizeUrl(url)).substr(0, 32), ".git");
}

Libgit2Client::Mirror& Libgit2Client::MirrorFor(std::string_view url) {
  std::string path = MirrorPathForTest(url);
  std::lock_guard<std::mutex> lock(mirrors_mu_);
  std::unique_ptr<Mirror>& m = mirrors_[path];
  if (!m) {
    m = std::make_unique<Mirror>();
    m->path = path;
  }
  return *m;
}

absl::StatusOr<RefMap> Libgit2Client::ListRemoteRefs(std::string_view url,
                                                     const Credentials& credentials) {
  OpContext ctx;
  git_remote_callbacks cb;
  DL_RETURN_IF_ERROR(PrepareNetwork(url, credentials, options_, ctx, cb));
  std::string what = Cat("listing refs of ", ctx.url);
  git_remote* raw = nullptr;
  std::string url_str(url);
  if (int rc = git_remote_create_detached(&raw, url_str.c_str()); rc < 0) {
    return GitError(rc, ctx, what, true);
  }
  RemotePtr remote(raw);
  git_proxy_options proxy;
  git_proxy_options_init(&proxy, GIT_PROXY_OPTIONS_VERSION);
  if (int rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &cb, &proxy, &ctx.headers);
      rc < 0) {
    return GitError(rc, ctx, what, true);
  }
  const git_remote_head** heads = nullptr;
  size_t n = 0;
  if (int rc = git_remote_ls(&heads, &n, remote.get()); rc < 0) {
    return GitError(rc, ctx, what, true);
  }
  RefMap refs;
  std::map<std::string, std::string> peeled;
  for (size_t i = 0; i < n; ++i) {
    std::string name = heads[i]->name;
    std::string sha = OidHex(&heads[i]->oid);
    if (name.ends_with("^{}")) {
      peeled[name.substr(0, name.size() - 3)] = sha;
    } else if (name == "HEAD" || name.starts_with("refs/heads/") ||
               name.starts_with("refs/tags/")) {
      refs[name] = sha;
    }
  }
  for (auto& [name, sha] : peeled) {
    if (auto it = refs.find(name); it != refs.end()) it->second = sha;
  }
  git_remote_disconnect(remote.get());
  if (ctx.Expired()) return ctx.callback_status;
  return refs;
}

absl::StatusOr<RefMap> Libgit2Client::Fetch(std::string_view url, const Credentials& credentials) {
  OpContext ctx;
  git_remote_callbacks cb;
  DL_RETURN_IF_ERROR(PrepareNetwork(url, credentials, options_, ctx, cb));
  Mirror& m = MirrorFor(url);
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.cleaned) {
    RemoveOrphanTemps(m.path);
    RemoveStaleLocks(m.path);
    m.cleaned = true;
  }
  std::string url_str(url);
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    DL_ASSIGN_OR_RETURN(RepoPtr repo,
                        OpenOrCreateMirror(m.path, ctx, /*force_recreate=*/attempt > 0));
    git_remote* raw = nullptr;
    // Anonymous remote; skipping url.*.insteadOf also avoids a per-config-entry regex match that
    // leaks memory in Debian's libgit2 1.5 (pcre2 match data never freed: ~250 KB per fetch).
    git_remote_create_options create;
    git_remote_create_options_init(&create, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    create.repository = repo.get();
    create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (int rc = git_remote_create_with_opts(&raw, url_str.c_str(), &create); rc < 0) {
      return GitError(rc, ctx, Cat("fetching ", ctx.url), true);
    }
    RemotePtr remote(raw);
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks = cb;
    fo.prune = GIT_FETCH_PRUNE;
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.custom_headers = ctx.headers;
    char heads_spec[] = "+refs/heads/*:refs/heads/*";
    char tags_spec[] = "+refs/tags/*:refs/tags/*";
    char* specs[] = {heads_spec, tags_spec};
    git_strarray refspecs{specs, 2};
    ctx.credential_attempts = 0;
    int rc = git_remote_fetch(remote.get(), &refspecs, &fo, nullptr);
    if (rc == 0) {
      // Point the mirror's HEAD at the remote's default branch, so RefMap["HEAD"] matches
      // what ls-remote reports.
      git_buf head = GIT_BUF_INIT;
      if (git_remote_default_branch(&head, remote.get()) == 0) {
        git_repository_set_head(repo.get(), head.ptr);
      }
      git_buf_dispose(&head);
      git_error_clear();
      return ReadLocalRefs(repo.get(), ctx);
    }
    const git_error* e = git_error_last();
    int klass = e ? e->klass : GIT_ERROR_NONE;
    last = GitError(rc, ctx, Cat("fetching ", ctx.url), true);
    if (!ctx.callback_status.ok() || !IsLocalDamage(last, klass)) return last;
  }
  return absl::InternalError(Cat(last.message(), " (also after recreating the mirror)"));
}

absl::StatusOr<std::string> Libgit2Client::ExpandCommit(std::string_view url,
                                                        std::string_view sha) {
  OpContext ctx;
  ctx.raw_url = std::string(url);
  ctx.url = RedactUrl(url);
  Mirror& m = MirrorFor(url);
  std::lock_guard<std::mutex> lock(m.mu);
  DL_ASSIGN_OR_RETURN(RepoPtr repo, OpenExistingMirror(m.path, ctx));
  DL_ASSIGN_OR_RETURN(CommitPtr commit, LookupCommit(repo.get(), sha, ctx));
  return OidHex(git_commit_id(commit.get()));
}

absl::StatusOr<CheckoutResult> Libgit2Client::Checkout(std::string_view url,
                                                       std::string_view commit_sha,
                                                       const std::string& dest_dir,
                                                       std::string_view subpath) {
  OpContext ctx;
  ctx.raw_url = std::string(url);
  ctx.url = RedactUrl(url);
  DL_ASSIGN_OR_RETURN(std::string sub, CleanSubpath(subpath, ctx));
  std::error_code ec;
  if (fs::exists(dest_dir, ec) && !fs::is_empty(dest_dir, ec)) {
    return absl::FailedPreconditionError(Cat("checkout destination ", dest_dir, " is not empty"));
  }
  fs::create_directories(dest_dir, ec);
  if (ec) return FsError(ec, Cat("creating ", dest_dir));

  Mirror& m = MirrorFor(url);
  std::lock_guard<std::mutex> lock(m.mu);
  DL_ASSIGN_OR_RETURN(RepoPtr repo, OpenExistingMirror(m.path, ctx));
  DL_ASSIGN_OR_RETURN(CommitPtr commit, LookupCommit(repo.get(), commit_sha, ctx));
  CheckoutResult result;
  result.commit = OidHex(git_commit_id(commit.get()));
  std::string where =
      Cat(ctx.url, " at commit ", result.commit.substr(0, 12), sub.empty() ? "" : " path ", sub);
  git_tree* raw_tree = nullptr;
  if (int rc = git_commit_tree(&raw_tree, commit.get()); rc < 0) {
    return GitError(rc, ctx, Cat("reading the tree of ", where), false);
  }
  TreePtr tree(raw_tree);
  if (!sub.empty()) {
    git_tree_entry* raw_entry = nullptr;
    int rc = git_tree_entry_bypath(&raw_entry, tree.get(), sub.c_str());
    if (rc == GIT_ENOTFOUND) {
      git_error_clear();
      return absl::NotFoundError(
          Cat("path ", sub, " not found in ", ctx.url, " at commit ", result.commit));
    }
    if (rc < 0) return GitError(rc, ctx, Cat("looking up ", where), false);
    EntryPtr entry(raw_entry);
    if (git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE) {
      return absl::InvalidArgumentError(
          Cat("path ", sub, " in ", ctx.url, " at commit ", result.commit, " is not a directory"));
    }
    git_tree* subtree = nullptr;
    if (int rc2 = git_tree_lookup(&subtree, repo.get(), git_tree_entry_id(entry.get())); rc2 < 0) {
      return GitError(rc2, ctx, Cat("reading ", where), false);
    }
    tree.reset(subtree);
  }
  DL_ASSIGN_OR_RETURN(Plan plan,
                      PlanCheckout(repo.get(), tree.get(), ctx, where, options_.max_checkout_files,
                                   options_.max_checkout_bytes));
  if (absl::Status s = WritePlan(repo.get(), plan, dest_dir, ctx); !s.ok()) {
    EmptyDirectory(dest_dir);
    return Annotate(s, Cat("checkout of ", where));
  }
  result.files = plan.files;
  result.bytes = plan.bytes;
  result.skipped_submodules = std::move(plan.submodules);
  return result;
}

absl::StatusOr<std::vector<std::string>> Libgit2Client::ChangedPaths(std::string_view url,
                                                                     std::string_view from_commit,
                                                                     std::string_view to_commit) {
  OpContext ctx;
  ctx.raw_url = std::string(url);
  ctx.url = RedactUrl(url);
  Mirror& m = MirrorFor(url);
  std::lock_guard<std::mutex> lock(m.mu);
  DL_ASSIGN_OR_RETURN(RepoPtr repo, OpenExistingMirror(m.path, ctx));
  TreePtr from_tree;
  if (!from_commit.empty()) {
    DL_ASSIGN_OR_RETURN(CommitPtr from, LookupCommit(repo.get(), from_commit, ctx));
    git_tree* raw = nullptr;
    if (int rc = git_commit_tree(&raw, from.get()); rc < 0) {
      return GitError(rc, ctx, Cat("reading the tree of commit ", from_commit), false);
    }
    from_tree.reset(raw);
  }
  DL_ASSIGN_OR_RETURN(CommitPtr to, LookupCommit(repo.get(), to_commit, ctx));
  git_tree* raw_to = nullptr;
  if (int rc = git_commit_tree(&raw_to, to.get()); rc < 0) {
    return GitError(rc, ctx, Cat("reading the tree of commit ", to_commit), false);
  }
  TreePtr to_tree(raw_to);
  git_diff_options opts;
  git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
  opts.ignore_submodules = GIT_SUBMODULE_IGNORE_NONE;
  git_diff* raw_diff = nullptr;
  if (int rc = git_diff_tree_to_tree(&raw_diff, repo.get(), from_tree.get(), to_tree.get(), &opts);
      rc < 0) {
    return GitError(rc, ctx, Cat("diffing ", from_commit, "..", to_commit, " in ", ctx.url), false);
  }
  DiffPtr diff(raw_diff);
  std::set<std::string> paths;
  size_t n = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    if (d->old_file.path && d->status != GIT_DELTA_ADDED) paths.insert(d->old_file.path);
    if (d->new_file.path && d->status != GIT_DELTA_DELETED) paths.insert(d->new_file.path);
  }
  return std::vector<std::string>(paths.begin(), paths.end());
}

}  // namespace driftless::git
