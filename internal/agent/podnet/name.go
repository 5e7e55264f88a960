package podnet

// MaxNetnsName bounds a namespace name (a file name, which may be 255 bytes);
// the pod name part is shortened to fit.
const MaxNetnsName = 200

// uidChars is how much of the pod UID a namespace name keeps: enough to tell
// apart two incarnations of a pod with the same name.
const uidChars = 8

// NetnsName is the name of pod's network namespace:
// <prefix><namespace>_<name>_<first 8 characters of the UID>, so that
// `ip netns list` shows whose it is. Kubernetes names never contain '_',
// which keeps the parts apart. When the result would be longer than
// MaxNetnsName the pod name is shortened; namespace (at most 63 characters)
// and UID are kept whole.
func NetnsName(prefix string, pod PodRef) string {
	uid := pod.UID
	if len(uid) > uidChars {
		uid = uid[:uidChars]
	}
	name := pod.Name
	fixed := len(prefix) + len(pod.Namespace) + len(uid) + 2
	if fixed+len(name) > MaxNetnsName {
		keep := max(MaxNetnsName-fixed, 0)
		name = name[:keep]
	}
	return prefix + pod.Namespace + "_" + name + "_" + uid
}
