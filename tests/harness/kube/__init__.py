"""The `kube` target's cluster: a real single-node Kubernetes built and started on this machine.

Modules, in the order the target uses them: `prereqs` (Debian packages, root), `binaries`
(Kubernetes and CoreDNS built from their Go modules, cached), `netns` (the isolated network),
`pki` (certificates and kubeconfigs), `cluster` (configs and processes), `storage` (default
StorageClass and hostPath PersistentVolumes), `teardown` (remove everything), and `images`
(the images the charts deploy, built here).
"""
