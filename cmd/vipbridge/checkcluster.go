package main

// The check of `vipbridge check` for cluster mode (--role publisher or
// node): each etcd endpoint answers, with TLS and credentials as the
// daemon would use them, and the keys under --etcd-prefix can be read.

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vipbridge/vipbridge/discovery/cluster"
)

// checkEtcd checks every --etcd endpoint and a read of --etcd-prefix;
// skipped in single-node mode.
func checkEtcd(ctx context.Context, cfg config) []checkLine {
	c := cfg.Cluster
	if c.Role == roleSingle || c.Role == "" {
		return []checkLine{skipLine("etcd", "--role single: no etcd")}
	}
	cli, err := cluster.NewClient(cluster.ClientConfig{Endpoints: c.Etcd, CAFile: c.EtcdCAFile, CertFile: c.EtcdCertFile,
		KeyFile: c.EtcdKeyFile, CredentialsFile: c.EtcdCredentialsFile, DialTimeout: checkTimeout})
	if err != nil {
		return []checkLine{failLine("etcd", "%v", err)}
	}
	defer cli.Close()
	var out []checkLine
	reached := false
	for _, ep := range c.Etcd {
		sctx, cancel := context.WithTimeout(ctx, checkTimeout)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			out = append(out, failLine("etcd reachable", "%s: %v", redactedURL(ep), err))
			continue
		}
		reached = true
		out = append(out, okLine("etcd reachable", "%s: etcd %s, member %x, raft leader %x", redactedURL(ep), st.Version, st.Header.MemberId, st.Leader))
	}
	if !reached {
		return append(out, skipLine("etcd read", "no etcd endpoint answered"))
	}
	gctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	resp, err := cli.Get(gctx, c.EtcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return append(out, failLine("etcd read", "%s: %v", c.EtcdPrefix, err))
	}
	return append(out, okLine("etcd read", "%s: %d keys at revision %d", c.EtcdPrefix, resp.Count, resp.Header.Revision))
}
