package scheme

import (
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
)

// registerPodOptionConversions decodes the query parameters of pods/log,
// pods/exec, pods/attach and pods/portforward into their option types, as
// the url.Values conversions kube-apiserver generates for them
// (k8s.io/api marks them +k8s:conversion-gen:explicit-from=net/url.Values
// but does not ship the functions). The apiserver's ParameterCodec needs
// them to serve those subresources.
func registerPodOptionConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodLogOptions)(nil), func(a, b any, sc conversion.Scope) error {
		return convertPodLogOptions(*a.(*url.Values), b.(*corev1.PodLogOptions), sc)
	}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodExecOptions)(nil), func(a, b any, sc conversion.Scope) error {
		return convertPodExecOptions(*a.(*url.Values), b.(*corev1.PodExecOptions), sc)
	}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodAttachOptions)(nil), func(a, b any, sc conversion.Scope) error {
		return convertPodAttachOptions(*a.(*url.Values), b.(*corev1.PodAttachOptions), sc)
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*url.Values)(nil), (*corev1.PodPortForwardOptions)(nil), func(a, b any, sc conversion.Scope) error {
		out := b.(*corev1.PodPortForwardOptions)
		out.Ports = nil
		if v, ok := (*a.(*url.Values))["ports"]; ok {
			return metav1.Convert_Slice_string_To_Slice_int32(&v, &out.Ports, sc)
		}
		return nil
	})
}

func convertPodLogOptions(in url.Values, out *corev1.PodLogOptions, s conversion.Scope) error {
	*out = corev1.PodLogOptions{TypeMeta: out.TypeMeta, Container: first(in, "container")}
	if v, ok := in["stream"]; ok && len(v) > 0 {
		out.Stream = &v[0]
	}
	if err := bools(in, s, map[string]*bool{"follow": &out.Follow, "previous": &out.Previous, "timestamps": &out.Timestamps,
		"insecureSkipTLSVerifyBackend": &out.InsecureSkipTLSVerifyBackend}); err != nil {
		return err
	}
	for name, dst := range map[string]**int64{"sinceSeconds": &out.SinceSeconds, "tailLines": &out.TailLines, "limitBytes": &out.LimitBytes} {
		if v, ok := in[name]; ok {
			if err := runtime.Convert_Slice_string_To_Pointer_int64(&v, dst, s); err != nil {
				return err
			}
		}
	}
	if v, ok := in["sinceTime"]; ok {
		return metav1.Convert_Slice_string_To_Pointer_v1_Time(&v, &out.SinceTime, s)
	}
	return nil
}

func convertPodExecOptions(in url.Values, out *corev1.PodExecOptions, s conversion.Scope) error {
	*out = corev1.PodExecOptions{TypeMeta: out.TypeMeta, Container: first(in, "container"), Command: in["command"]}
	return bools(in, s, map[string]*bool{"stdin": &out.Stdin, "stdout": &out.Stdout, "stderr": &out.Stderr, "tty": &out.TTY})
}

func convertPodAttachOptions(in url.Values, out *corev1.PodAttachOptions, s conversion.Scope) error {
	*out = corev1.PodAttachOptions{TypeMeta: out.TypeMeta, Container: first(in, "container")}
	return bools(in, s, map[string]*bool{"stdin": &out.Stdin, "stdout": &out.Stdout, "stderr": &out.Stderr, "tty": &out.TTY})
}

func first(in url.Values, name string) string {
	if v := in[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// bools reads boolean parameters as upstream does: present and not "0" or
// "false" is true.
func bools(in url.Values, s conversion.Scope, dst map[string]*bool) error {
	for name, b := range dst {
		v := in[name]
		if err := runtime.Convert_Slice_string_To_bool(&v, b, s); err != nil {
			return err
		}
	}
	return nil
}
