package monitor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gitmon-dev/gitmon/internal/redact"
)

// Defaults for zero Options fields.
const (
	DefaultTimeout   = 60 * time.Second
	DefaultWalkLimit = 10000
	// DefaultDescriptors is the descriptors glob of a repository that
	// names none.
	DefaultDescriptors = "services/*.yaml"
	// defaultCacheSize bounds the object cache of a Repo given none.
	defaultCacheSize = 16 * cache.MiByte
	// largeObject is the size from which a blob is streamed from its pack
	// rather than read into memory (and the cache) whole.
	largeObject = 1 << 20
	// maxOpenPacks bounds the pack files a store keeps open.
	maxOpenPacks = 8
)

// remoteName names the remote-tracking refs: refs/remotes/origin/B.
const remoteName = "origin"

// Remote says where a repository is and how to reach it. Its secrets are
// values already read (from the environment or files); Remote never
// prints them.
type Remote struct {
	// URL is the repository's address: https://, http://, ssh:// (also
	// git+ssh:// and ssh+git://), git://, file:// or a local path. It
	// must not hold credentials; it is shown sanitised anyway.
	URL string
	// Insecure allows plain http:// and git://, which anyone on the
	// network path can tamper with.
	Insecure bool
	// CAFile is an extra CA bundle (PEM) for HTTPS.
	CAFile string
	// Username and Password authenticate over HTTP(S).
	Username string
	Password string
	// SSHKey is an unencrypted private key (PEM) for ssh:// URLs, read
	// from SSHKeyFile, which messages name.
	SSHKey     string
	SSHKeyFile string
	// KnownHostsFile is the SSH host keys to trust; "" means the user's
	// and the system's known_hosts.
	KnownHostsFile string
	// Descriptors is the glob of descriptor files (DefaultDescriptors
	// when "").
	Descriptors string
	// Branches are the branches the caller watches; nil means all.
	// ListBranches then returns those only, and over git:// asks a
	// server that speaks protocol v2 for them alone (lsrefs.go).
	Branches []string
}

// String shows the remote without its secrets.
func (r Remote) String() string {
	return redact.URL(r.URL)
}

// GoString keeps %#v from printing the secrets.
func (r Remote) GoString() string {
	return "monitor.Remote{URL: " + strconv.Quote(redact.URL(r.URL)) + "}"
}

// Options says where and how a Repo keeps its objects.
type Options struct {
	// Dir is this repository's on-disk object store, under the state
	// folder. It is created if missing. One Repo owns it at a time.
	Dir string
	// Cache is the object cache, shared by every repository so that
	// their total is bounded: cache.NewObjectLRU(size). Nil gives this
	// Repo a small cache of its own.
	Cache cache.Object
	// Timeout bounds each network attempt (a ref listing, a fetch).
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// FirstByte bounds the wait for a connection and for the server's
	// first byte on it, within Timeout. Zero means DefaultFirstByte (or
	// Timeout, if shorter).
	FirstByte time.Duration
	// Dials bounds the ref listings in flight at once, shared by the
	// Repos given the same one. Nil means the process-wide limit of
	// DefaultListings.
	Dials *DialLimit
}

// Repo is one configured repository: its remote, reached with the
// configured credentials, and its local object store. It is safe for
// concurrent use; calls that read or write the store are serialised.
type Repo struct {
	url     string // never holds credentials; shown through redact.URL
	scheme  string // "https", "http", "ssh", "git" or "file"
	timeout time.Duration
	// firstByte bounds a connection until the server's first byte.
	firstByte time.Duration
	dials     *DialLimit
	branches  []string // watched; nil: all
	secrets   []string // values scrubbed from error text
	ca        []byte   // extra CA bundle for HTTPS
	basic     *githttp.BasicAuth
	sshUser   string
	sshKey    ssh.Signer
	hosts     []string // known_hosts files; nil means the user's and the system's
	// lister is go-git's ref listing, made on first use: the lean
	// reader (advert.go) serves git:// and HTTP without it.
	listerOnce sync.Once
	lister     *git.Remote
	lean       *leanLister // nil: go-git lists refs
	files      glob        // the descriptors, checked after each fetch

	dir   string
	cache cache.Object

	mu     sync.Mutex // guards the store
	st     *filesystem.Storage
	remote *git.Remote // fetches into st
}

// NewRepo opens (or creates) the object store in opts.Dir for the
// repository cfg describes, and prepares its transport. It does not
// touch the network.
func NewRepo(cfg Remote, opts Options) (*Repo, error) {
	shown := redact.URL(cfg.URL)
	if cfg.URL == "" {
		return nil, errors.New("repository has no URL")
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("repository %s: no folder for its objects", shown)
	}
	// go-git knows ssh:// only, not its git+ssh:// and ssh+git:// aliases.
	for _, alias := range []string{"git+ssh://", "ssh+git://"} {
		if len(cfg.URL) > len(alias) && strings.EqualFold(cfg.URL[:len(alias)], alias) {
			cfg.URL = "ssh://" + cfg.URL[len(alias):]
		}
	}
	ep, err := transport.NewEndpoint(cfg.URL)
	if err != nil {
		// The parse error may repeat the URL: don't wrap it.
		return nil, fmt.Errorf("repository %s: not a Git URL", shown)
	}
	r := &Repo{
		url:     cfg.URL,
		scheme:  ep.Protocol,
		timeout: opts.Timeout,
		dir:     opts.Dir,
		cache:   opts.Cache,
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	r.firstByte = opts.FirstByte
	if r.firstByte <= 0 {
		r.firstByte = DefaultFirstByte
	}
	r.firstByte = min(r.firstByte, r.timeout)
	r.dials = opts.Dials
	if r.dials == nil {
		r.dials = processDials
	}
	for _, b := range cfg.Branches {
		if err := checkBranch(b); err != nil {
			return nil, fmt.Errorf("repository %s: %w", shown, err)
		}
		r.branches = append(r.branches, b)
	}
	if r.cache == nil {
		r.cache = cache.NewObjectLRU(defaultCacheSize)
	}
	pattern := cfg.Descriptors
	if pattern == "" {
		pattern = DefaultDescriptors
	}
	if r.files, err = newGlob(pattern); err != nil {
		return nil, fmt.Errorf("repository %s: descriptors: %w", shown, err)
	}
	for _, s := range []string{cfg.Password, cfg.SSHKey} {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	// A short user name would garble messages if scrubbed ("git"); user
	// names are not what leaks hurt.
	if u := cfg.Username; len(u) >= 4 {
		r.secrets = append(r.secrets, u)
	}

	if (r.scheme == "http" || r.scheme == "git") && !cfg.Insecure {
		return nil, fmt.Errorf("repository %s: %s:// is neither encrypted nor authenticated; it needs Insecure", shown, r.scheme)
	}
	switch r.scheme {
	case "https", "http":
		if u, p := cfg.Username, cfg.Password; u != "" || p != "" {
			r.basic = &githttp.BasicAuth{Username: u, Password: p}
		}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("repository %s: reading ca_file: %w", shown, err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("repository %s: ca_file %s holds no PEM certificate", shown, cfg.CAFile)
			}
			r.ca = pem
		}
	case "ssh":
		if cfg.SSHKey == "" {
			return nil, fmt.Errorf("repository %s: an ssh URL needs an SSH key", shown)
		}
		signer, err := ssh.ParsePrivateKey([]byte(cfg.SSHKey))
		if err != nil {
			// The parse error never holds key material, but say only
			// what is wrong.
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, fmt.Errorf("repository %s: the ssh key %s has a passphrase, which gitmon cannot use", shown, cfg.SSHKeyFile)
			}
			return nil, fmt.Errorf("repository %s: the ssh key %s cannot be parsed", shown, cfg.SSHKeyFile)
		}
		r.sshKey = signer
		r.sshUser = ep.User
		if r.sshUser == "" {
			r.sshUser = "git"
		}
		if cfg.KnownHostsFile != "" {
			r.hosts = []string{cfg.KnownHostsFile}
		}
	case "git", "file":
	default:
		return nil, fmt.Errorf("repository %s: unsupported transport %q", shown, r.scheme)
	}
	var user, pass string
	if r.basic != nil {
		user, pass = r.basic.Username, r.basic.Password
	}
	r.lean = newLeanLister(cfg.URL, r.scheme, r.ca, user, pass, r.firstByte, r.branches)
	if err := r.open(); err != nil {
		return nil, fmt.Errorf("repository %s: opening its object store %s: %w", shown, opts.Dir, err)
	}
	return r, nil
}

// open opens the store in r.dir, creating an empty bare repository there
// if there is none.
func (r *Repo) open() error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	st := filesystem.NewStorageWithOptions(osfs.New(r.dir), r.cache, filesystem.Options{
		ExclusiveAccess:      true,
		MaxOpenDescriptors:   maxOpenPacks,
		LargeObjectThreshold: largeObject,
	})
	if _, err := git.Open(st, nil); errors.Is(err, git.ErrRepositoryNotExists) {
		if _, err := git.Init(st, nil); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	r.st = st
	r.remote = git.NewRemote(st, &gitconfig.RemoteConfig{Name: remoteName, URLs: []string{r.url}})
	return nil
}

// Close releases the store's open files. The Repo must not be used after.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st == nil {
		return nil
	}
	err := r.st.Close()
	r.st = nil
	return err
}

// ListBranches returns the remote's branches (name → commit SHA) from
// its ref advertisement, without fetching anything. It waits for a slot
// of the Repo's DialLimit first. A connection on which the server says
// nothing within the first-byte deadline is tried once more on a fresh
// one, within the attempt's timeout.
func (r *Repo) ListBranches(ctx context.Context) (map[string]string, error) {
	if err := r.dials.acquire(ctx); err != nil {
		return nil, fmt.Errorf("list refs %s: waiting for a connection slot: %w", redact.URL(r.url), err)
	}
	defer r.dials.release()
	return r.listRefs(ctx)
}

// listRefs is ListBranches's attempt, with its timeout and one more try.
func (r *Repo) listRefs(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	refs, err := r.listOnce(ctx)
	if silent(ctx, err) {
		refs, err = r.listOnce(ctx)
	}
	if err != nil {
		return nil, r.remoteErr(ctx, "list refs", err)
	}
	if r.branches != nil {
		for b := range refs {
			if !slices.Contains(r.branches, b) {
				delete(refs, b)
			}
		}
	}
	return refs, nil
}

// listOnce is one ref listing: the lean reader where it applies, go-git
// otherwise.
func (r *Repo) listOnce(ctx context.Context) (map[string]string, error) {
	if r.lean != nil {
		refs, err := r.lean.list(ctx)
		if !errors.Is(err, errProtocol) {
			return refs, err
		}
	}
	auth, proxy, err := r.transport(ctx)
	if err != nil {
		return nil, err
	}
	refs, err := r.goGitLister().ListContext(ctx, &git.ListOptions{
		Auth:          auth,
		CABundle:      r.ca,
		ProxyOptions:  proxy,
		PeelingOption: git.IgnorePeeled,
	})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	branches := make(map[string]string, len(refs))
	for _, ref := range refs {
		if ref.Type() == plumbing.HashReference && ref.Name().IsBranch() {
			branches[ref.Name().Short()] = ref.Hash().String()
		}
	}
	return branches, nil
}

// goGitLister is go-git's ref listing of the remote.
func (r *Repo) goGitLister() *git.Remote {
	r.listerOnce.Do(func() {
		r.lister = git.NewRemote(memory.NewStorage(), &gitconfig.RemoteConfig{Name: remoteName, URLs: []string{r.url}})
	})
	return r.lister
}

// trackingRef is where Fetch keeps branch's tip.
func trackingRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, branch)
}

// Fetch brings branch's commits into the local store, incrementally:
// +refs/heads/B:refs/remotes/origin/B, so a force-pushed branch is
// followed too. Should the store lack an object it claims to hold, Fetch
// re-fetches the branch from scratch, and as a last resort rebuilds the
// whole store (re-fetching every branch it held that still exists).
func (r *Repo) Fetch(ctx context.Context, branch string) error {
	if err := checkBranch(branch); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st == nil {
		return errors.New("repository is closed")
	}
	err := r.fetch(ctx, branch)
	if transient(err) && ctx.Err() == nil {
		// One immediate retry for a connection that broke off: go-git's
		// SSH transport, for one, fails a complete fetch with "closing
		// input: EOF" when the server closes the channel first.
		err = r.fetch(ctx, branch)
	}
	if err == nil || !isMissingObject(err) || ctx.Err() != nil {
		return r.fetchErr(ctx, branch, err)
	}
	// Forget the branch: its tip no longer counts as something we have.
	if rmErr := r.st.RemoveReference(trackingRef(branch)); rmErr != nil {
		return fmt.Errorf("fetch %s: %w", branch, rmErr)
	}
	err = r.fetch(ctx, branch)
	if err == nil || !isMissingObject(err) || ctx.Err() != nil {
		return r.fetchErr(ctx, branch, err)
	}
	return r.fetchErr(ctx, branch, r.rebuild(ctx, branch))
}

// transient reports whether a fetch error may pass on a second try:
// anything but what the sentinels table (errors.go) classifies (refusals,
// missing objects, timeouts) and a host-key or size problem.
func transient(err error) bool {
	if err == nil {
		return false
	}
	for _, st := range sentinels {
		if errors.Is(err, st.cause) || st.ours != nil && errors.Is(err, st.ours) {
			return false
		}
	}
	var keyErr *knownhosts.KeyError
	return !errors.Is(err, ErrHostKey) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrLimit) && !errors.As(err, &keyErr)
}

// fetchErr makes a fetch error safe to return.
func (r *Repo) fetchErr(ctx context.Context, branch string, err error) error {
	if err == nil {
		return nil
	}
	var safe *remoteError
	if errors.As(err, &safe) {
		return err
	}
	return r.remoteErr(ctx, "fetch "+branch+" from", err)
}

// fetch is one attempt at fetching branches, with its own timeout. It
// checks that each tip's commit and tree arrived.
func (r *Repo) fetch(ctx context.Context, branches ...string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	auth, proxy, err := r.transport(ctx)
	if err != nil {
		return err
	}
	specs := make([]gitconfig.RefSpec, len(branches))
	for i, b := range branches {
		specs[i] = gitconfig.RefSpec("+" + plumbing.NewBranchReferenceName(b).String() + ":" + trackingRef(b).String())
	}
	err = r.remote.FetchContext(ctx, &git.FetchOptions{
		RemoteName:   remoteName,
		RefSpecs:     specs,
		Auth:         auth,
		CABundle:     r.ca,
		ProxyOptions: proxy,
		Tags:         git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if ctx.Err() != nil {
			return r.remoteErr(ctx, "fetch "+branches[0]+" from", err)
		}
		return err
	}
	for _, b := range branches {
		ref, err := r.st.Reference(trackingRef(b))
		if err != nil {
			return fmt.Errorf("branch %s: %w after fetching", b, err)
		}
		if err := r.verify(ctx, ref.Hash()); err != nil {
			return fmt.Errorf("branch %s at %s: %w", b, ref.Hash(), err)
		}
	}
	return nil
}

// verify checks that what the daemon reads first at a fetched tip is in
// the store: the commit, its first parent, its tree, and the descriptor
// blobs. go-git trusts that an object it holds comes with everything it
// reaches, so a damaged store shows up here rather than later.
func (r *Repo) verify(ctx context.Context, tip plumbing.Hash) error {
	c, err := r.commitObject(tip)
	if err != nil {
		return err
	}
	if len(c.ParentHashes) > 0 {
		if _, err := r.commitObject(c.ParentHashes[0]); err != nil {
			return err
		}
	}
	t, err := r.tree(c.TreeHash)
	if err != nil {
		return err
	}
	var files []File
	return r.list(ctx, r.files, "", 0, t, &files)
}

// rebuild empties the store and fetches branch again, with every other
// branch the store held that the remote still has.
func (r *Repo) rebuild(ctx context.Context, branch string) error {
	held := []string{branch}
	if refs, err := r.st.IterReferences(); err == nil {
		_ = refs.ForEach(func(ref *plumbing.Reference) error {
			if ref.Name().IsRemote() && ref.Name() != trackingRef(branch) {
				held = append(held, ref.Name().String()[len("refs/remotes/"+remoteName+"/"):])
			}
			return nil
		})
	}
	live, err := r.ListBranches(ctx)
	if err != nil {
		return err
	}
	var fetch []string
	for _, b := range held {
		if _, ok := live[b]; ok {
			fetch = append(fetch, b)
		}
	}
	if len(fetch) == 0 || fetch[0] != branch {
		return fmt.Errorf("%w: %s", ErrNoBranch, branch)
	}
	_ = r.st.Close()
	r.st = nil
	if err := removeContents(r.dir); err != nil {
		return fmt.Errorf("emptying the object store: %w", err)
	}
	if err := r.open(); err != nil {
		return fmt.Errorf("reopening the object store: %w", err)
	}
	return r.fetch(ctx, fetch...)
}

func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// checkBranch refuses a name that is not a valid branch, which could
// otherwise change the meaning of a refspec.
func checkBranch(branch string) error {
	if branch == "" || branch[0] == '-' || plumbing.NewBranchReferenceName(branch).Validate() != nil {
		return fmt.Errorf("%q is not a valid branch name", branch)
	}
	return nil
}
